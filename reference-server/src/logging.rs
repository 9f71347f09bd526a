//! Logs to stderr through `tracing`, in one of two formats (`--log-format`):
//! `text`, one human line per event (the default), or `json`, one JSON object
//! per line (tracing-subscriber's JSON formatter: `timestamp`, `level`,
//! `fields` with `message`, `target`, and `span` with the fields of the
//! current span, e.g. an HTTP request's `request_id`, `method` and `route`).
//! `RUST_LOG` filters either (default `info`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The process's subscriber in `format`, writing to `writer`; `ansi`: colours in the text format.
pub fn subscriber<W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().with_current_span(true).with_span_list(false).finish()),
    }
}

/// Installs [`subscriber`] on stderr for the whole process (once; a second
/// call does nothing); text is coloured only when stderr is a terminal.
pub fn init(format: LogFormat) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing::subscriber::set_global_default(subscriber(format, std::io::stderr, ansi));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Everything written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_one(format: LogFormat) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let sub = subscriber(format, move || writer.clone(), false);
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("request", request_id = "r-42", route = "/healthz");
            let _in = span.enter();
            tracing::warn!(close_code = 1008u16, reason = "slow consumer", user = "g1", "closed");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_format_writes_one_object_per_line_with_the_fields_and_the_span() {
        let text = log_one(LogFormat::Json);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON: {text}: {e}"));
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["fields"]["message"], "closed");
        assert_eq!(v["fields"]["close_code"], 1008);
        assert_eq!(v["fields"]["reason"], "slow consumer");
        assert_eq!(v["span"]["request_id"], "r-42");
        assert_eq!(v["span"]["route"], "/healthz");
    }

    #[test]
    fn text_format_is_not_json() {
        let text = log_one(LogFormat::Text);
        assert!(text.contains("close_code=1008 reason=\"slow consumer\""), "{text}");
        assert!(text.contains("request{request_id=\"r-42\""), "{text}");
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
    }
}
