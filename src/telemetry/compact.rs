//! The human log format: time, level, the message, the event's own fields, and from the
//! enclosing spans only the few an operator reads a line for (route, provider, status,
//! reason). The spans carry a dozen OpenTelemetry attributes each for traces; repeating
//! them on every line made lines hundreds of characters long. `--log-format json` keeps
//! everything.

use std::collections::HashSet;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Span fields worth a place on a log line, and the short name they print as.
const SPAN_KEYS: [(&str, &str); 4] = [
    ("switchyard.route", "route"),
    ("switchyard.provider", "provider"),
    ("http.response.status_code", "status"),
    ("error.type", "reason"),
];

/// Formats events as one short line (see the module doc).
pub struct Compact;

/// Records only [`SPAN_KEYS`] of a span, as `name=value` words.
pub struct SpanKeys;

impl<'w> FormatFields<'w> for SpanKeys {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut pairs = Pairs::default();
        fields.record(&mut pairs);
        let mut first = false;
        for (name, value) in pairs.0 {
            let Some((_, short)) = SPAN_KEYS.iter().find(|(long, _)| *long == name) else {
                continue;
            };
            if first {
                writer.write_char(' ')?;
            }
            first = true;
            write!(writer, "{short}={value}")?;
        }
        Ok(())
    }
}

impl<S> FormatEvent<S, SpanKeys> for Compact
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanKeys>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {:>5} ", event.metadata().level())?;
        let mut pairs = Pairs::default();
        event.record(&mut pairs);
        let mut shown: HashSet<String> = HashSet::new();
        if let Some((_, message)) = pairs.0.iter().find(|(name, _)| *name == "message") {
            writer.write_str(message)?;
        }
        for (name, value) in &pairs.0 {
            // A repeated warning's count of held-back lines matters only when some were.
            if *name == "message" || (*name == "suppressed" && value == "0") {
                continue;
            }
            write!(writer, " {name}={value}")?;
            shown.insert((*name).to_owned());
        }
        for span in ctx.event_scope().into_iter().flatten() {
            let extensions = span.extensions();
            let Some(fields) = extensions.get::<FormattedFields<SpanKeys>>() else {
                continue;
            };
            for word in fields.fields.split(' ').filter(|w| !w.is_empty()) {
                let name = word.split_once('=').map_or(word, |(name, _)| name);
                if shown.insert(name.to_owned()) {
                    write!(writer, " {word}")?;
                }
            }
        }
        writeln!(writer)
    }
}

/// Field names and values in the order recorded; a string is quoted only when it would
/// not read as one word.
#[derive(Default)]
struct Pairs(Vec<(&'static str, String)>);

impl Visit for Pairs {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = if field.name() != "message"
            && (value.is_empty() || value.contains(char::is_whitespace))
        {
            format!("{value:?}")
        } else {
            value.to_owned()
        };
        self.0.push((field.name(), value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.push((field.name(), text));
        } else {
            self.record_str(field, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn logged(f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .fmt_fields(SpanKeys)
            .event_format(Compact)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_line_is_the_message_its_fields_and_the_spans_key_fields_only() {
        let text = logged(|| {
            let call = tracing::info_span!(
                "call",
                gen_ai.operation.name = "chat",
                server.address = "api.example.com",
                switchyard.route = "gpt-4o",
                http.response.status_code = tracing::field::Empty,
            );
            let _call = call.enter();
            call.record("http.response.status_code", 502);
            let attempt = tracing::info_span!(
                "attempt",
                switchyard.provider = "primary",
                switchyard.route = "gpt-4o"
            );
            let _attempt = attempt.enter();
            tracing::warn!(reason = "all_failed", error = %"every target failed", suppressed = 0u64, "request failed");
            tracing::warn!(route = "other", suppressed = 3u64, "repeated");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = lines[0].split_once(" WARN ").unwrap().1;
        assert_eq!(
            first,
            r#"request failed reason=all_failed error="every target failed" provider=primary route=gpt-4o status=502"#
        );
        let second = lines[1].split_once(" WARN ").unwrap().1;
        assert_eq!(
            second,
            "repeated route=other suppressed=3 provider=primary status=502"
        );
        assert!(!text.contains("gen_ai") && !text.contains("api.example.com"));
    }
}
