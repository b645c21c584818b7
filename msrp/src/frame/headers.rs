//! The headers of a frame, parsed into types (RFC 4975 section 9, RFC 4976 section 9).

use std::fmt;

use super::{HeadError, MAX_HEADERS, MAX_PATH};
use crate::uri::MsrpUri;

/// `Byte-Range: <start>-<end>/<total>` (RFC 4975 section 7.1.1); `*` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte of the chunk, counted from 1.
    pub start: u64,
    /// Last byte, if the sender knew it.
    pub end: Option<u64>,
    /// The message's size, if the sender knew it.
    pub total: Option<u64>,
}

impl ByteRange {
    fn parse(s: &str) -> Option<ByteRange> {
        let (range, total) = s.trim().split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let num = |t: &str| -> Option<Option<u64>> {
            match t {
                "*" => Some(None),
                t if !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(Some(t.parse().ok()?))
                }
                _ => None,
            }
        };
        let start = num(start)??;
        let end = num(end)?;
        let total = num(total)?;
        if start == 0 {
            return None;
        }
        Some(ByteRange { start, end, total })
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(e) => write!(f, "{e}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

/// `Failure-Report` values (RFC 4975 section 7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReport {
    /// `yes` (the default): responses and failure REPORTs.
    Yes,
    /// `no`: neither.
    No,
    /// `partial`: failure REPORTs only, no success responses needed... but responses are
    /// still sent for failures.
    Partial,
}

/// `Status: <namespace> <code> [<comment>]` of a REPORT (RFC 4975 section 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Namespace, `000` for MSRP's own codes.
    pub namespace: u16,
    /// Status code.
    pub code: u16,
    /// Comment.
    pub comment: Option<String>,
}

impl Status {
    fn parse(s: &str) -> Option<Status> {
        let mut parts = s.trim().splitn(3, ' ');
        let three = |t: &str| {
            (t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let namespace = three(parts.next()?)?;
        let code = three(parts.next()?)?;
        let comment = parts
            .next()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        Some(Status {
            namespace,
            code,
            comment,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code)?;
        if let Some(c) = &self.comment {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// The headers of one frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `To-Path`.
    pub to_path: Vec<MsrpUri>,
    /// `From-Path`.
    pub from_path: Vec<MsrpUri>,
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// `Byte-Range`.
    pub byte_range: Option<ByteRange>,
    /// `Success-Report: yes` (`Some(true)`) or `no`.
    pub success_report: Option<bool>,
    /// `Failure-Report`.
    pub failure_report: Option<FailureReport>,
    /// `Status` (REPORT).
    pub status: Option<Status>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Use-Path` (a relay's AUTH 200, RFC 4976 section 5.1).
    pub use_path: Vec<MsrpUri>,
    /// `Expires` (AUTH).
    pub expires: Option<u32>,
    /// `Min-Expires` (423 to AUTH).
    pub min_expires: Option<u32>,
    /// `Max-Expires` (423 to AUTH).
    pub max_expires: Option<u32>,
    /// `WWW-Authenticate` values (401 to AUTH).
    pub www_authenticate: Vec<String>,
    /// `Authorization` (AUTH).
    pub authorization: Option<String>,
    /// Every other header, as written (MIME headers of the body, extensions).
    pub other: Vec<(String, String)>,
}

impl Headers {
    /// Parses the header lines of a head; with the first error found, if any (the headers
    /// that did parse are still returned, so a malformed request can be answered).
    pub(super) fn parse<'a>(lines: impl Iterator<Item = &'a [u8]>) -> (Headers, Option<HeadError>) {
        let mut h = Headers::default();
        let mut count = 0;
        let mut first_error = None;
        for line in lines {
            count += 1;
            if count > MAX_HEADERS {
                first_error.get_or_insert(HeadError::TooManyHeaders);
                break;
            }
            if let Err(e) = h.parse_line(line) {
                first_error.get_or_insert(e);
            }
        }
        if first_error.is_none() && (h.to_path.is_empty() || h.from_path.is_empty()) {
            first_error = Some(HeadError::MissingPath);
        }
        (h, first_error)
    }

    fn parse_line(&mut self, line: &[u8]) -> Result<(), HeadError> {
        let line = std::str::from_utf8(line).map_err(|_| HeadError::NotUtf8)?;
        let (name, value) = line.split_once(':').ok_or(HeadError::MalformedHeader)?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(HeadError::MalformedHeader);
        }
        let value = value.trim();
        let path = |v: &str| MsrpUri::parse_list(v, MAX_PATH).map_err(HeadError::BadPath);
        let expires = |v: &str| -> Result<Option<u32>, HeadError> {
            v.parse().map(Some).map_err(|_| HeadError::BadExpires)
        };
        let once = |present: bool| {
            if present {
                Err(HeadError::Duplicate)
            } else {
                Ok(())
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "to-path" => {
                once(!self.to_path.is_empty())?;
                self.to_path = path(value)?;
            }
            "from-path" => {
                once(!self.from_path.is_empty())?;
                self.from_path = path(value)?;
            }
            "use-path" => {
                once(!self.use_path.is_empty())?;
                self.use_path = path(value)?;
            }
            "message-id" => {
                once(self.message_id.is_some())?;
                if value.is_empty() || value.len() > 64 {
                    return Err(HeadError::MalformedHeader);
                }
                self.message_id = Some(value.to_owned());
            }
            "byte-range" => {
                once(self.byte_range.is_some())?;
                self.byte_range = Some(ByteRange::parse(value).ok_or(HeadError::BadByteRange)?);
            }
            "success-report" => {
                self.success_report = Some(match value {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(HeadError::BadReportHeader),
                });
            }
            "failure-report" => {
                self.failure_report = Some(match value {
                    "yes" => FailureReport::Yes,
                    "no" => FailureReport::No,
                    "partial" => FailureReport::Partial,
                    _ => return Err(HeadError::BadReportHeader),
                });
            }
            "status" => self.status = Some(Status::parse(value).ok_or(HeadError::BadStatus)?),
            "content-type" => {
                once(self.content_type.is_some())?;
                if value.is_empty() {
                    return Err(HeadError::MalformedHeader);
                }
                self.content_type = Some(value.to_owned());
            }
            "expires" => self.expires = expires(value)?,
            "min-expires" => self.min_expires = expires(value)?,
            "max-expires" => self.max_expires = expires(value)?,
            "www-authenticate" => self.www_authenticate.push(value.to_owned()),
            "authorization" => self.authorization = Some(value.to_owned()),
            _ => self.other.push((name.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    /// Writes every header but Content-Type (which goes last, before the body) as
    /// `Name: value\r\n`, To-Path and From-Path first (RFC 4975 section 7.1).
    pub(super) fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let path = |out: &mut Vec<u8>, name: &str, p: &[MsrpUri]| {
            if !p.is_empty() {
                let _ = write!(out, "{name}: {}\r\n", crate::uri::format_path(p));
            }
        };
        path(out, "To-Path", &self.to_path);
        path(out, "From-Path", &self.from_path);
        if let Some(id) = &self.message_id {
            let _ = write!(out, "Message-ID: {id}\r\n");
        }
        if let Some(r) = &self.byte_range {
            let _ = write!(out, "Byte-Range: {r}\r\n");
        }
        if let Some(s) = self.success_report {
            let _ = write!(out, "Success-Report: {}\r\n", if s { "yes" } else { "no" });
        }
        if let Some(f) = self.failure_report {
            let v = match f {
                FailureReport::Yes => "yes",
                FailureReport::No => "no",
                FailureReport::Partial => "partial",
            };
            let _ = write!(out, "Failure-Report: {v}\r\n");
        }
        if let Some(s) = &self.status {
            let _ = write!(out, "Status: {s}\r\n");
        }
        path(out, "Use-Path", &self.use_path);
        for (name, v) in [
            ("Expires", self.expires),
            ("Min-Expires", self.min_expires),
            ("Max-Expires", self.max_expires),
        ] {
            if let Some(v) = v {
                let _ = write!(out, "{name}: {v}\r\n");
            }
        }
        for v in &self.www_authenticate {
            let _ = write!(out, "WWW-Authenticate: {v}\r\n");
        }
        if let Some(v) = &self.authorization {
            let _ = write!(out, "Authorization: {v}\r\n");
        }
        for (n, v) in &self.other {
            let _ = write!(out, "{n}: {v}\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_and_statuses() {
        let r = ByteRange::parse("1-2048/204800").unwrap();
        assert_eq!((r.start, r.end, r.total), (1, Some(2048), Some(204800)));
        assert_eq!(r.to_string(), "1-2048/204800");
        let r = ByteRange::parse("2049-*/*").unwrap();
        assert_eq!((r.end, r.total), (None, None));
        assert_eq!(r.to_string(), "2049-*/*");
        for bad in [
            "0-1/1",
            "1-2",
            "a-1/1",
            "-1/1",
            "1-/1",
            "1-1/",
            "99999999999999999999-1/1",
        ] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
        let s = Status::parse("000 413 Message too big").unwrap();
        assert_eq!((s.namespace, s.code), (0, 413));
        assert_eq!(s.to_string(), "000 413 Message too big");
        assert_eq!(Status::parse("000 200").unwrap().to_string(), "000 200");
        assert_eq!(Status::parse("0 200"), None);
    }
}
