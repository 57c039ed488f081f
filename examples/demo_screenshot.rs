//! Renders the demo's live view to a PNG for the README (`scripts/demo-screenshot.sh`):
//! the view is drawn into ratatui's `TestBackend` from traffic shaped like the demo's
//! first three phases (healthy, brown-out, 503s), then each cell is painted with a
//! monospace font. Usage: `demo_screenshot FONT.ttf OUT.png`.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use switchyard::demo::view::{draw, View};

const COLS: u16 = 110;
const ROWS: u16 = 26;
const CELL_W: u32 = 10;
const CELL_H: u32 = 20;
const BACKGROUND: [u8; 3] = [24, 26, 33];
const FOREGROUND: [u8; 3] = [220, 220, 220];

/// The colours the view uses, as a dark terminal theme shows them.
fn rgb(colour: Color) -> Option<[u8; 3]> {
    Some(match colour {
        Color::Red => [230, 80, 80],
        Color::Green => [90, 200, 110],
        Color::Yellow => [230, 200, 80],
        Color::Cyan => [80, 200, 220],
        Color::Magenta => [200, 120, 220],
        _ => return None,
    })
}

/// The view about 18 s into the demo: the primary browned out, then returned 503s.
fn view() -> View {
    let mut view = View::default();
    let phases = [
        (25, 8, 0, "closed"),
        (25, 1, 6, "closed"),
        (10, 0, 7, "open"),
        (8, 0, 8, "half-open"),
        (20, 0, 8, "open"),
    ];
    for (ticks, primary, backup, state) in phases {
        for i in 0..ticks {
            view.tick(
                primary + primary.min(1) * (i % 3),
                backup + backup.min(1) * (i % 2),
                state,
            );
        }
    }
    view.phase = "primary returns 503s".to_owned();
    view.elapsed = 17.6;
    view.sent = 1484;
    view.failovers = 41;
    view.transitions = vec![
        " 10.1s  closed -> open".to_owned(),
        " 12.4s  open -> half-open".to_owned(),
        " 14.8s  half-open -> open".to_owned(),
    ];
    view
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, font, out] = args.as_slice() else {
        return Err("usage: demo_screenshot FONT.ttf OUT.png".into());
    };
    let font = FontVec::try_from_vec(std::fs::read(font)?)?;
    let scaled = font.as_scaled(PxScale::from(CELL_H as f32 * 0.85));
    let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS))?;
    terminal.draw(|f| draw(f, &view()))?;
    let buffer = terminal.backend().buffer();
    let (width, height) = (u32::from(COLS) * CELL_W, u32::from(ROWS) * CELL_H);
    let mut pixels: Vec<u8> = BACKGROUND
        .iter()
        .copied()
        .cycle()
        .take((width * height * 3) as usize)
        .collect();
    for y in 0..ROWS {
        for x in 0..COLS {
            let cell = &buffer[(x, y)];
            let colour = rgb(cell.fg).unwrap_or(FOREGROUND);
            let Some(ch) = cell.symbol().chars().next().filter(|c| !c.is_whitespace()) else {
                continue;
            };
            let origin = ab_glyph::point(
                (u32::from(x) * CELL_W) as f32,
                (u32::from(y) * CELL_H) as f32 + scaled.ascent(),
            );
            let glyph = scaled.scaled_glyph(ch);
            let glyph = ab_glyph::Glyph {
                position: origin,
                ..glyph
            };
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                if px < 0 || py < 0 || px >= i64::from(width) || py >= i64::from(height) {
                    return;
                }
                let at = ((py as u32 * width + px as u32) * 3) as usize;
                for c in 0..3 {
                    let blended = f32::from(pixels[at + c]) * (1.0 - coverage)
                        + f32::from(colour[c]) * coverage;
                    pixels[at + c] = blended as u8;
                }
            });
        }
    }
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}
