//! The SSE framer: any bytes, cut into reads anywhere, give the same events as the whole
//! input, and the events' raw bytes are exactly the bytes consumed.

use switchyard::sse::{Event, Parser};

fn parse(chunks: &[&[u8]]) -> (Vec<Event>, bool) {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        p.push(chunk);
        while let Some(e) = p.next_event() {
            out.push(e);
        }
    }
    p.finish();
    while let Some(e) = p.next_event() {
        out.push(e);
    }
    (out, p.has_partial())
}

/// The first byte picks a read size, so the same stream is also fed in pieces.
pub fn run(data: &[u8]) {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 16) + 1;
    let (whole, whole_partial) = parse(&[stream]);
    let chunks: Vec<&[u8]> = stream.chunks(step).collect();
    let (split, split_partial) = parse(&chunks);
    assert_eq!(whole, split);
    assert_eq!(whole_partial, split_partial);
    let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
    assert!(stream.starts_with(&raw));
}
