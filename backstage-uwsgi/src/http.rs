//! The HTTP response head uWSGI writes back (status line and headers).
use crate::error::{Error, InvalidResponse};

/// The default limit on a response head, in bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// A parsed status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The protocol from the status line, such as `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase (lossily decoded).
    pub reason: String,
    /// Headers in order; names as sent, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The body length the head declares: its `Content-Length` (already checked by
    /// [`Self::parse`] to be digits, the same in every copy of the header).
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
    }

    /// Parses a head from the front of `buf`.
    ///
    /// `Ok(None)`: the head is not complete yet (and `buf` is within `limit`).
    /// `Ok(Some((head, used)))`: the head and its length including the blank line; the
    /// body starts at `used`. Lines end with `\r\n` (a bare `\n` is accepted).
    pub fn parse(buf: &[u8], limit: usize) -> Result<Option<(ResponseHead, usize)>, Error> {
        let invalid = |offset, reason| Error::InvalidResponse { offset, reason };
        if !buf.is_empty() {
            let n = buf.len().min(5);
            if buf[..n] != b"HTTP/"[..n] {
                return Err(invalid(0, InvalidResponse::NotHttp));
            }
        }
        let mut lines = Vec::new();
        let mut pos = 0;
        let used = loop {
            let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
                if buf.len() > limit {
                    return Err(invalid(limit, InvalidResponse::TooLong { limit }));
                }
                return Ok(None);
            };
            let end = pos + nl;
            if end + 1 > limit {
                return Err(invalid(limit, InvalidResponse::TooLong { limit }));
            }
            let line = &buf[pos..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break end + 1;
            }
            lines.push((pos, line));
            pos = end + 1;
        };
        let (_, status_line) = lines[0];
        let mut parts = status_line.splitn(3, |&b| b == b' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        let reason = parts.next().unwrap_or_default();
        let status = match *code {
            [a, b, c] if [a, b, c].iter().all(u8::is_ascii_digit) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(invalid(version.len() + 1, InvalidResponse::BadStatus)),
        };
        let mut headers = Vec::with_capacity(lines.len() - 1);
        for &(offset, line) in &lines[1..] {
            let colon = line.iter().position(|&b| b == b':');
            let name = colon.map(|c| &line[..c]).filter(|name| {
                !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic() && *b != b':')
            });
            let (Some(colon), Some(name)) = (colon, name) else {
                return Err(invalid(offset, InvalidResponse::BadHeader));
            };
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                let earlier = headers
                    .iter()
                    .find(|(n, _): &&(String, Vec<u8>)| n.eq_ignore_ascii_case("content-length"));
                let digits =
                    !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit);
                if !digits || earlier.is_some_and(|(_, v)| v.as_slice() != value) {
                    return Err(invalid(offset, InvalidResponse::BadContentLength));
                }
            }
            headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        }
        Ok(Some((
            ResponseHead {
                version: String::from_utf8_lossy(version).into_owned(),
                status,
                reason: String::from_utf8_lossy(reason).into_owned(),
                headers,
            },
            used,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_digits_and_one_value() {
        let (head, _) = ResponseHead::parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n",
            MAX_HEAD_LEN,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.content_length(), Some(12));
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let err = ResponseHead::parse(bad, MAX_HEAD_LEN).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidResponse {
                        reason: InvalidResponse::BadContentLength,
                        offset: 17..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn parses_what_uwsgi_sends() {
        let buf = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-A:  b \r\n\r\nbody";
        let (head, used) = ResponseHead::parse(buf, MAX_HEAD_LEN).unwrap().unwrap();
        assert_eq!(&buf[used..], b"body");
        assert_eq!(head.status, 404);
        assert_eq!(head.reason, "Not Found");
        assert_eq!(head.version, "HTTP/1.1");
        assert_eq!(head.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(head.header("X-A"), Some(&b"b"[..]));
    }

    #[test]
    fn every_prefix_needs_more() {
        let buf = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
        for end in 0..buf.len() {
            assert!(
                ResponseHead::parse(&buf[..end], MAX_HEAD_LEN)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn reports_where_a_head_is_invalid() {
        for (buf, message) in [
            (
                &b"SSH-2.0"[..],
                "invalid http response at byte `0`: status line does not start with `HTTP/`",
            ),
            (
                b"HTTP/1.1 2000 OK\r\n\r\n",
                "invalid http response at byte `9`: status code is not three digits",
            ),
            (
                b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                "invalid http response at byte `17`: header line has no `:`",
            ),
        ] {
            assert_eq!(
                ResponseHead::parse(buf, MAX_HEAD_LEN)
                    .unwrap_err()
                    .to_string(),
                message
            );
        }
        assert_eq!(
            ResponseHead::parse(b"HTTP/1.1 200 OK\r\nA: bbbbbbbbbbbb", 16)
                .unwrap_err()
                .to_string(),
            "invalid http response at byte `16`: head exceeds `16` bytes"
        );
    }
}
