//! A real SMTP server for tests: Python's `aiosmtpd` (pinned in `tests/interop/requirements.txt`)
//! storing every message it accepts in a maildir, and a minimal reader of those messages
//! (headers with RFC 2047 encoded words, multipart bodies, quoted-printable and base64) —
//! enough to find a subject and a link.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running `aiosmtpd` on `127.0.0.1`. Killed when dropped.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// One message the sink received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `To` header, decoded.
    pub to: String,
    /// The `From` header, decoded.
    pub from: String,
    /// The `Subject` header, decoded.
    pub subject: String,
    /// The envelope recipients (`RCPT TO`), as the sink recorded them.
    pub envelope_to: String,
    /// The text of the message: the decoded `text/plain` part (or the only part), LF line ends.
    pub body: String,
    /// The decoded `text/html` part, if any, LF line ends.
    pub html: Option<String>,
    /// The message as stored.
    pub raw: String,
}

/// Whether process `pid` holds the listening TCP socket on 127.0.0.1:`port` (Linux: the
/// socket's inode in `/proc/net/tcp` among the process's descriptors). Elsewhere, `true`.
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = *fields.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| format!("socket:[{}]", fields.get(9).copied().unwrap_or_default()))
        })
        .collect();
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

impl SmtpSink {
    /// Starts a sink, or `None` (after printing `skipped: aiosmtpd not installed`) when
    /// python3 or aiosmtpd is missing — unless `TESSERA_REQUIRE_INTEROP=1`, which makes that
    /// a panic.
    pub fn start() -> Option<SmtpSink> {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            if std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
                panic!(
                    "aiosmtpd is not installed: run `python3 -m pip install -r tests/interop/requirements.txt`"
                );
            }
            eprintln!("skipped: aiosmtpd not installed");
            return None;
        }
        // The free port may be taken between the probe and the bind: try again then.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(sink) => return Some(sink),
                Err(error) => last_error = error,
            }
        }
        panic!("cannot start aiosmtpd: {last_error}");
    }

    fn try_start() -> Result<SmtpSink, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let maildir = dir.path().join("maildir");
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).map_err(|e| e.to_string())?;
        let port = crate::free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let mut sink = SmtpSink { child, port, dir };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = sink.child.try_wait() {
                return Err(format!("aiosmtpd exited ({status}): {}", sink.log()));
            }
            // The port was free when picked, but another process (a parallel test's sink or
            // node) may have bound it since: only a listener of our own child counts, else
            // this aiosmtpd fails to bind, exits, and the next attempt takes another port.
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && listens_on(sink.child.id(), port)
            {
                return Ok(sink);
            }
            if Instant::now() > deadline {
                return Err(format!("aiosmtpd did not listen on {addr}: {}", sink.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What aiosmtpd wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let maildir = self.dir.path().join("maildir");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                files.push((modified, path));
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| read_message(&path))
            .collect()
    }

    /// Waits until at least `n` messages arrived and returns all of them; panics (with the
    /// sink's log) after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} messages within {timeout:?}, got {}; aiosmtpd log:\n{}",
                    messages.len(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_message(path: &Path) -> Option<ReceivedMail> {
    let bytes = std::fs::read(path).ok()?;
    Some(parse_message(&String::from_utf8_lossy(&bytes)))
}

/// Parses an RFC 5322 message (lenient: LF or CRLF line ends).
fn parse_message(raw: &str) -> ReceivedMail {
    let normalized = raw.replace("\r\n", "\n");
    let part = Part::parse(&normalized);
    let mut texts = Vec::new();
    part.collect_texts(&mut texts);
    let body = texts
        .iter()
        .find(|(kind, _)| kind == "text/plain")
        .or_else(|| texts.first())
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    let html = texts
        .iter()
        .find(|(kind, _)| kind == "text/html")
        .map(|(_, text)| text.clone());
    ReceivedMail {
        to: part.header("to"),
        from: part.header("from"),
        subject: part.header("subject"),
        envelope_to: part.header("x-rcptto"),
        body,
        html,
        raw: raw.to_owned(),
    }
}

/// A MIME entity: unfolded headers (lower-case names, raw values) and its body.
struct Part<'a> {
    headers: Vec<(String, String)>,
    body: &'a str,
}

impl<'a> Part<'a> {
    fn parse(text: &'a str) -> Part<'a> {
        let (head, body) = match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None if text.starts_with('\n') => ("", &text[1..]),
            None => (text, ""),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Part { headers, body }
    }

    fn raw_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header's value, RFC 2047 encoded words decoded; empty when absent.
    fn header(&self, name: &str) -> String {
        self.raw_header(name).map(decode_words).unwrap_or_default()
    }

    /// `(media type, parameters)` of `Content-Type`, `text/plain` by default.
    fn content_type(&self) -> (String, Vec<(String, String)>) {
        let value = self.raw_header("content-type").unwrap_or("text/plain");
        let mut pieces = value.split(';');
        let kind = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
        let params = pieces
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                )
            })
            .collect();
        (kind, params)
    }

    /// The decoded text of every `text/*` leaf, depth first, as `(media type, text)`.
    fn collect_texts(&self, out: &mut Vec<(String, String)>) {
        let (kind, params) = self.content_type();
        if kind.starts_with("multipart/") {
            let Some((_, boundary)) = params.iter().find(|(k, _)| k == "boundary") else {
                return;
            };
            for child in split_multipart(self.body, boundary) {
                Part::parse(child).collect_texts(out);
            }
        } else if kind.starts_with("text/") || kind.is_empty() {
            let encoding = self
                .raw_header("content-transfer-encoding")
                .unwrap_or("7bit")
                .trim()
                .to_ascii_lowercase();
            let bytes = match encoding.as_str() {
                "base64" => decode_base64(self.body),
                "quoted-printable" => decode_quoted_printable(self.body),
                _ => self.body.as_bytes().to_vec(),
            };
            out.push((kind, String::from_utf8_lossy(&bytes).replace("\r\n", "\n")));
        }
    }
}

/// The bodies between `--boundary` lines (preamble and epilogue dropped).
fn split_multipart<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == delimiter || trimmed == format!("{delimiter}--") {
            if let Some(s) = start {
                // The line break before the delimiter belongs to the delimiter.
                let end = if offset > s && body.as_bytes()[offset - 1] == b'\n' {
                    offset - 1
                } else {
                    offset
                };
                parts.push(&body[s..end.max(s)]);
            }
            if trimmed.ends_with("--") && trimmed != delimiter {
                break;
            }
            start = Some(offset + line.len());
        }
        offset += line.len();
    }
    parts
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`, UTF-8 or ASCII); whitespace
/// between two encoded words is dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let decoded = rest[start + 2..].split_once('?').and_then(|(_charset, tail)| {
            let (encoding, tail) = tail.split_once('?')?;
            let end = tail.find("?=")?;
            let text = &tail[..end];
            let bytes = match encoding {
                "B" | "b" => decode_base64(text),
                "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")),
                _ => return None,
            };
            let consumed = start + 2 + (rest[start + 2..].len() - tail.len()) + end + 2;
            Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
        });
        match decoded {
            Some((text, consumed)) => {
                let between = &rest[..start];
                if !(after_word && between.trim().is_empty()) {
                    out.push_str(between);
                }
                out.push_str(&text);
                rest = &rest[consumed..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            // Soft line break.
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multipart_with_encoded_words_base64_and_quoted_printable() {
        let raw = "From: Tessera <no-reply@example.com>\r\n\
To: kim@example.org\r\n\
Subject: =?utf-8?b?7J2066mU7J28?=\r\n =?utf-8?q?_=EC=9D=B8=EC=A6=9D?=\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative;\r\n boundary=\"XyZ\"\r\n\
X-RcptTo: kim@example.org\r\n\
\r\n\
--XyZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Open https://id.example.com/verify?token=3Dabc&x=3D1 and a very long line th=\r\n\
at goes on\r\n\
--XyZ\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PGEgaHJlZj0iaHR0cHM6Ly9pZC5leGFtcGxlLmNvbS92ZXJpZnkiPuyduOymnTwvYT4=\r\n\
--XyZ--\r\n";
        let mail = parse_message(raw);
        assert_eq!(mail.to, "kim@example.org");
        assert_eq!(mail.from, "Tessera <no-reply@example.com>");
        assert_eq!(mail.subject, "이메일 인증");
        assert_eq!(mail.envelope_to, "kim@example.org");
        assert_eq!(
            mail.body,
            "Open https://id.example.com/verify?token=abc&x=1 and a very long line that goes on"
        );
        assert_eq!(
            mail.html.as_deref(),
            Some("<a href=\"https://id.example.com/verify\">인증</a>")
        );
    }

    #[test]
    fn parses_a_single_part_message() {
        let mail = parse_message("Subject: plain =?x?\nTo: a@b\n\nline one\nline two\n");
        assert_eq!(mail.subject, "plain =?x?");
        assert_eq!(mail.body, "line one\nline two\n");
        assert_eq!(mail.html, None);
    }
}
