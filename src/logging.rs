//! The log: one event a line. A logged value can come from outside (a user name typed at the
//! sign-in page, a device's name); a newline in it must not start a forged line, and escape codes
//! must not reach a file or a terminal. Colours only when the log goes to a terminal.

use std::io::{IsTerminal, Write};

/// Writes each event with its control characters escaped (`\n` → `\\n`, ESC → `\\x1b`), except the
/// newline that ends it; ESC is kept where we asked for colours.
pub struct EscapingWriter {
    inner: std::io::Stderr,
    keep_colours: bool,
}

impl Write for EscapingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(&escape(buf, self.keep_colours))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The bytes of one event with control characters escaped; the final newline stays.
pub fn escape(buf: &[u8], keep_colours: bool) -> Vec<u8> {
    let (body, end) = match buf.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (buf, &b""[..]),
    };
    let mut out = Vec::with_capacity(buf.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b'\t'),
            0x1b if keep_colours => out.push(b),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

/// `ALLOT_LOG_FORMAT=json`: one JSON object a line (for log collectors; JSON escapes control
/// characters itself); otherwise text.
pub fn init(default_filter: &str) {
    let json = std::env::var("ALLOT_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let colours = !json && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALLOT_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(colours)
        .with_writer(move || EscapingWriter {
            inner: std::io::stderr(),
            keep_colours: colours,
        });
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn a_value_cannot_forge_a_line_or_colour_it() {
        let event = b"INFO sign-in refused username=x\n2026-12-01 INFO forged \x1b[31mred\x1b[0m\n";
        let out = String::from_utf8(escape(event, false)).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\x1b'));
        assert!(out.ends_with("\\x1b[0m\n"), "{out}");
        assert!(String::from_utf8(escape(b"a\x1b[1mb\n", true))
            .unwrap()
            .contains('\x1b'));
    }
}
