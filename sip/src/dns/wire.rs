//! DNS wire format (RFC 1035 section 4): query encoding and bounded, panic-free response parsing.
//!
//! Everything here reads bytes a remote server chose, so every access goes through
//! `Reader`, which returns [`ParseError`] instead of indexing out of bounds, and name
//! decompression follows only backward pointers with a hard jump limit, so a pointer loop
//! cannot spin.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Naptr, Record, RecordData, RecordType, Srv};

/// The only class we ask for and accept (RFC 1035 section 3.2.4).
pub const CLASS_IN: u16 = 1;
/// TYPE code of SOA, read from the authority section for negative caching (RFC 2308 section 5).
const TYPE_SOA: u16 = 6;
/// RFC 1035 section 2.3.4: a name is at most 255 octets on the wire.
const MAX_NAME_WIRE_LEN: usize = 255;
/// RFC 1035 section 2.3.4: a label is at most 63 octets.
const MAX_LABEL_LEN: usize = 63;
/// Compression pointers followed while reading one name. Each pointer must also point strictly
/// backward, so this only bounds work on long legitimate chains; 255 octets allow at most 127
/// labels, so 128 jumps is never a limit for a valid name.
const MAX_POINTER_JUMPS: usize = 128;
/// Header flag bits (RFC 1035 section 4.1.1).
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const OPCODE_MASK: u16 = 0x7800;
const RCODE_MASK: u16 = 0x000f;

/// Why a datagram is not a well-formed DNS message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The message ends before a field that its header or a length promised.
    Truncated,
    /// The QR bit is clear: this is a query, not a response.
    NotAResponse,
    /// The QR bit is set: a response was given where a query was expected.
    NotAQuery,
    /// The opcode is not QUERY (0); we never send anything else.
    UnexpectedOpcode,
    /// The question count is not exactly one (RFC 1035 section 4.1.2 allows more; no server does).
    QuestionCount,
    /// A label length byte uses the reserved 0b01/0b10 prefixes (RFC 1035 section 4.1.4, RFC 6891).
    BadLabelType,
    /// A compression pointer points forward or at itself, which is how pointer loops are built.
    BadPointer,
    /// More compression pointers than any valid name needs.
    TooManyPointers,
    /// A decoded name exceeds 255 octets (RFC 1035 section 2.3.4).
    NameTooLong,
    /// A record's RDATA does not have the length or shape its type requires.
    BadRdata,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Truncated => "message truncated",
            ParseError::NotAResponse => "not a response",
            ParseError::NotAQuery => "not a query",
            ParseError::UnexpectedOpcode => "unexpected opcode",
            ParseError::QuestionCount => "question count is not 1",
            ParseError::BadLabelType => "reserved label type",
            ParseError::BadPointer => "compression pointer does not point backward",
            ParseError::TooManyPointers => "too many compression pointers",
            ParseError::NameTooLong => "name longer than 255 octets",
            ParseError::BadRdata => "malformed record data",
        })
    }
}

impl std::error::Error for ParseError {}

/// Why a name cannot be put into a query.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The name is empty, has an empty label (`a..b`), or contains a backslash (escapes are
    /// only produced by the parser for odd bytes and are never valid host names).
    BadLabel,
    /// A label is longer than 63 octets (RFC 1035 section 2.3.4).
    LabelTooLong,
    /// The name is longer than 255 octets on the wire (RFC 1035 section 2.3.4).
    NameTooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BadLabel => "empty or invalid label",
            EncodeError::LabelTooLong => "label longer than 63 octets",
            EncodeError::NameTooLong => "name longer than 255 octets",
        })
    }
}

impl std::error::Error for EncodeError {}

/// The question section entry of a message (RFC 1035 section 4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Queried name in the canonical form of [`Record::name`].
    pub name: String,
    /// QTYPE as sent on the wire.
    pub rtype: u16,
    /// QCLASS as sent on the wire.
    pub class: u16,
}

/// A query as decoded by [`parse_query`]: enough for a test responder to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Transaction id to echo.
    pub id: u16,
    /// Whether the client asked for recursion (RD bit).
    pub recursion_desired: bool,
    /// The single question.
    pub question: Question,
}

/// A parsed response, limited to what a stub resolver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Transaction id (must match the query's).
    pub id: u16,
    /// TC bit: the answer did not fit in the datagram (RFC 1035 section 4.1.1). When set, the
    /// record sections are not parsed, since they may be cut anywhere.
    pub truncated: bool,
    /// RCODE (RFC 1035 section 4.1.1): 0 no error, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED.
    pub rcode: u8,
    /// The echoed question, compared with what we asked to reject stray or spoofed answers.
    pub question: Question,
    /// Answer section records of class IN with a type we understand, in wire order.
    pub answers: Vec<Record>,
    /// Negative-caching TTL from an SOA in the authority section: min(SOA TTL, SOA MINIMUM),
    /// RFC 2308 section 5. `None` when the response carries no SOA.
    pub negative_ttl: Option<u32>,
}

/// Encodes a recursive query (RD set, RFC 1035 section 4.1.1) for `name`/`rtype`, class IN.
pub fn encode_query(id: u16, name: &str, rtype: RecordType) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    // QDCOUNT 1, ANCOUNT/NSCOUNT/ARCOUNT 0.
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut out)?;
    out.extend_from_slice(&rtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// Appends `name` uncompressed. A single trailing dot (absolute form) is accepted.
pub(crate) fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.contains('\\') {
        return Err(EncodeError::BadLabel);
    }
    let start = out.len();
    for label in name.split('.') {
        if label.is_empty() {
            return Err(EncodeError::BadLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(EncodeError::LabelTooLong);
        }
        // Fits: checked against MAX_LABEL_LEN (63) just above.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() - start > MAX_NAME_WIRE_LEN {
        out.truncate(start);
        return Err(EncodeError::NameTooLong);
    }
    Ok(())
}

/// Decodes a query (used by test responders and the fuzz target; the resolver never receives
/// queries).
pub fn parse_query(bytes: &[u8]) -> Result<Query, ParseError> {
    let mut reader = Reader::new(bytes);
    let header = Header::read(&mut reader)?;
    if header.flags & FLAG_QR != 0 {
        return Err(ParseError::NotAQuery);
    }
    if header.flags & OPCODE_MASK != 0 {
        return Err(ParseError::UnexpectedOpcode);
    }
    if header.qdcount != 1 {
        return Err(ParseError::QuestionCount);
    }
    let question = read_question(&mut reader)?;
    Ok(Query {
        id: header.id,
        recursion_desired: header.flags & FLAG_RD != 0,
        question,
    })
}

/// Reads the header and question of a response, leaving `reader` after the question.
fn read_response_start(reader: &mut Reader<'_>) -> Result<(Header, Question), ParseError> {
    let header = Header::read(reader)?;
    if header.flags & FLAG_QR == 0 {
        return Err(ParseError::NotAResponse);
    }
    if header.flags & OPCODE_MASK != 0 {
        return Err(ParseError::UnexpectedOpcode);
    }
    if header.qdcount != 1 {
        return Err(ParseError::QuestionCount);
    }
    let question = read_question(reader)?;
    Ok((header, question))
}

/// The id and question of a response whose record sections may be malformed. The resolver
/// uses it to tell a broken answer to its own query (worth reporting) from stray bytes
/// (ignored).
pub fn parse_response_question(bytes: &[u8]) -> Result<(u16, Question), ParseError> {
    let (header, question) = read_response_start(&mut Reader::new(bytes))?;
    Ok((header.id, question))
}

/// Parses a response datagram. Never panics; every length is checked against the buffer.
pub fn parse_response(bytes: &[u8]) -> Result<Response, ParseError> {
    let mut reader = Reader::new(bytes);
    let (header, question) = read_response_start(&mut reader)?;
    let truncated = header.flags & FLAG_TC != 0;
    // Masked to 4 bits, so the cast is lossless.
    let rcode = (header.flags & RCODE_MASK) as u8;
    let mut response = Response {
        id: header.id,
        truncated,
        rcode,
        question,
        answers: Vec::new(),
        negative_ttl: None,
    };
    if truncated {
        return Ok(response);
    }
    // Every record occupies at least 11 octets, so the counts cannot make us loop longer than
    // the datagram allows: a lying count ends in ParseError::Truncated.
    for _ in 0..header.ancount {
        if let Some(record) = read_record(&mut reader)? {
            response.answers.push(record);
        }
    }
    for _ in 0..header.nscount {
        let _owner = read_name(bytes, &mut reader)?;
        let rtype = reader.u16()?;
        let class = reader.u16()?;
        let ttl = reader.u32()?;
        let rdlength = usize::from(reader.u16()?);
        let rdata = reader.take(rdlength)?;
        if rtype == TYPE_SOA && class == CLASS_IN {
            // SOA RDATA is two names (at least one octet each) and five u32s; MINIMUM is the
            // last u32 (RFC 1035 section 3.3.13).
            let minimum = match rdata.len().checked_sub(4).and_then(|at| rdata.get(at..)) {
                Some(tail) if rdata.len() >= 22 => {
                    u32::from_be_bytes(tail.try_into().map_err(|_| ParseError::BadRdata)?)
                }
                _ => return Err(ParseError::BadRdata),
            };
            let candidate = ttl.min(minimum);
            response.negative_ttl = Some(
                response
                    .negative_ttl
                    .map_or(candidate, |t| t.min(candidate)),
            );
        }
    }
    // The additional section is not needed: RFC 2782 allows servers to add A records for SRV
    // targets there, but we ask for them explicitly, which keeps the trust model simple.
    Ok(response)
}

struct Header {
    id: u16,
    flags: u16,
    qdcount: u16,
    ancount: u16,
    nscount: u16,
}

impl Header {
    fn read(reader: &mut Reader<'_>) -> Result<Self, ParseError> {
        let id = reader.u16()?;
        let flags = reader.u16()?;
        let qdcount = reader.u16()?;
        let ancount = reader.u16()?;
        let nscount = reader.u16()?;
        let _arcount = reader.u16()?;
        Ok(Header {
            id,
            flags,
            qdcount,
            ancount,
            nscount,
        })
    }
}

fn read_question(reader: &mut Reader<'_>) -> Result<Question, ParseError> {
    let name = read_name(reader.bytes, reader)?;
    let rtype = reader.u16()?;
    let class = reader.u16()?;
    Ok(Question { name, rtype, class })
}

/// Reads one resource record; `Ok(None)` for records we skip (other classes or types).
fn read_record(reader: &mut Reader<'_>) -> Result<Option<Record>, ParseError> {
    let message = reader.bytes;
    let name = read_name(message, reader)?;
    let rtype = reader.u16()?;
    let class = reader.u16()?;
    let ttl = reader.u32()?;
    let rdlength = usize::from(reader.u16()?);
    let rdata_start = reader.pos;
    let rdata = reader.take(rdlength)?;
    let rdata_end = reader.pos;
    let Some(kind) = RecordType::from_code(rtype) else {
        return Ok(None);
    };
    if class != CLASS_IN {
        return Ok(None);
    }
    // RFC 2181 section 8: a TTL with the top bit set is treated as zero.
    let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
    // Names inside RDATA may use compression pointers into the whole message (RFC 1035
    // section 4.1.4), so they are read from the message, bounded by the RDATA end.
    let mut rd = Reader {
        bytes: message,
        pos: rdata_start,
        end: rdata_end,
    };
    let data = match kind {
        RecordType::A => {
            if rdata.len() != 4 {
                return Err(ParseError::BadRdata);
            }
            RecordData::A(Ipv4Addr::from(rd.array::<4>()?))
        }
        RecordType::Aaaa => {
            // RFC 3596 section 2.2: 16 octets.
            if rdata.len() != 16 {
                return Err(ParseError::BadRdata);
            }
            RecordData::Aaaa(Ipv6Addr::from(rd.array::<16>()?))
        }
        RecordType::Cname => RecordData::Cname(read_name(message, &mut rd)?),
        RecordType::Srv => {
            // RFC 2782: priority, weight, port, target.
            let priority = rd.u16()?;
            let weight = rd.u16()?;
            let port = rd.u16()?;
            let target = read_name(message, &mut rd)?;
            RecordData::Srv(Srv {
                priority,
                weight,
                port,
                target,
            })
        }
        RecordType::Naptr => {
            // RFC 3403 section 4.1: order, preference, flags, services, regexp, replacement.
            let order = rd.u16()?;
            let preference = rd.u16()?;
            let flags = rd.character_string()?;
            let services = rd.character_string()?;
            let regexp = rd.character_string()?;
            let replacement = read_name(message, &mut rd)?;
            RecordData::Naptr(Naptr {
                order,
                preference,
                flags,
                services,
                regexp,
                replacement,
            })
        }
    };
    if rd.pos != rdata_end {
        return Err(ParseError::BadRdata);
    }
    Ok(Some(Record { name, ttl, data }))
}

/// Reads a possibly compressed name starting at `reader`'s position and advances `reader` past
/// the in-place part (labels up to the terminating zero or the first pointer).
///
/// The result is lower-cased ASCII without a trailing dot; the root name is `""`. Octets that
/// are not printable ASCII, and `.` or `\` inside a label, are written as `\DDD` (the RFC 1035
/// section 5.1 master-file escape) so that distinct wire names stay distinct strings.
fn read_name(message: &[u8], reader: &mut Reader<'_>) -> Result<String, ParseError> {
    let mut name = String::new();
    let mut wire_len = 0usize;
    let mut jumps = 0usize;
    // Position being decoded; it leaves `reader` at the first pointer.
    let mut pos = reader.pos;
    let mut end = reader.end;
    let mut in_place = true;
    // Start of the label run currently being read; a pointer must go strictly before it.
    let mut run_start = pos;
    loop {
        let len = *message
            .get(pos)
            .filter(|_| pos < end)
            .ok_or(ParseError::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                pos += 1;
                wire_len += 1 + usize::from(len);
                if wire_len > MAX_NAME_WIRE_LEN {
                    return Err(ParseError::NameTooLong);
                }
                if len == 0 {
                    break;
                }
                let label_end = pos + usize::from(len);
                if label_end > end {
                    return Err(ParseError::Truncated);
                }
                let label = message.get(pos..label_end).ok_or(ParseError::Truncated)?;
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                pos = label_end;
            }
            0xc0 => {
                let low = *message
                    .get(pos + 1)
                    .filter(|_| pos + 1 < end)
                    .ok_or(ParseError::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target >= run_start {
                    return Err(ParseError::BadPointer);
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(ParseError::TooManyPointers);
                }
                if in_place {
                    reader.pos = pos + 2;
                    in_place = false;
                }
                pos = target;
                run_start = target;
                // After a jump the name may lie anywhere earlier in the message, not only
                // inside the RDATA that contained the pointer.
                end = message.len();
            }
            _ => return Err(ParseError::BadLabelType),
        }
    }
    if in_place {
        reader.pos = pos;
    }
    Ok(name)
}

fn push_label(name: &mut String, label: &[u8]) {
    for &octet in label {
        match octet {
            b'.' | b'\\' => push_escaped(name, octet),
            0x21..=0x7e => name.push(char::from(octet.to_ascii_lowercase())),
            _ => push_escaped(name, octet),
        }
    }
}

fn push_escaped(name: &mut String, octet: u8) {
    name.push('\\');
    name.push(char::from(b'0' + octet / 100));
    name.push(char::from(b'0' + (octet / 10) % 10));
    name.push(char::from(b'0' + octet % 10));
}

/// Bounds-checked cursor over a message. `end` is where the current structure stops (the
/// whole message, or one RDATA).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            pos: 0,
            end: bytes.len(),
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ParseError> {
        let stop = self.pos.checked_add(len).ok_or(ParseError::Truncated)?;
        if stop > self.end {
            return Err(ParseError::Truncated);
        }
        let slice = self
            .bytes
            .get(self.pos..stop)
            .ok_or(ParseError::Truncated)?;
        self.pos = stop;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        self.take(N)?.try_into().map_err(|_| ParseError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, ParseError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        self.array().map(u32::from_be_bytes)
    }

    /// `<character-string>`: one length octet then that many octets (RFC 1035 section 3.3).
    fn character_string(&mut self) -> Result<String, ParseError> {
        let [len] = self.array()?;
        let bytes = self.take(usize::from(len))?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_encoder::{naptr, srv, ResponseBuilder};
    use super::*;
    use engine::Rng;

    /// Responses covering every record type we parse, used as mutation seeds too.
    fn sample_responses() -> Vec<Vec<u8>> {
        vec![
            ResponseBuilder::new(7, "example.com", RecordType::Naptr)
                .answer(
                    "example.com",
                    300,
                    naptr(10, 5, "s", "SIP+D2U", "_sip._udp.example.com"),
                )
                .answer(
                    "example.com",
                    300,
                    naptr(20, 5, "s", "SIPS+D2T", "_sips._tcp.example.com"),
                )
                .build(),
            ResponseBuilder::new(8, "_sip._udp.example.com", RecordType::Srv)
                .answer(
                    "_sip._udp.example.com",
                    60,
                    srv(0, 5, 5060, "sip1.example.com"),
                )
                .answer("_sip._udp.example.com", 60, srv(1, 0, 5080, ""))
                .build(),
            ResponseBuilder::new(9, "www.example.com", RecordType::Aaaa)
                .answer(
                    "www.example.com",
                    30,
                    RecordData::Cname("host.example.net".into()),
                )
                .answer(
                    "host.example.net",
                    40,
                    RecordData::Aaaa("2001:db8::7".parse().unwrap()),
                )
                .uncompressed()
                .build(),
            ResponseBuilder::new(10, "gone.example.com", RecordType::A)
                .rcode(3)
                .soa(900, 120)
                .build(),
        ]
    }

    #[test]
    fn query_encoding_round_trips_and_sets_rd() {
        let bytes = encode_query(0xbeef, "Example.COM.", RecordType::Srv).unwrap();
        let query = parse_query(&bytes).unwrap();
        assert_eq!(query.id, 0xbeef);
        assert!(query.recursion_desired);
        assert_eq!(query.question.name, "example.com");
        assert_eq!(query.question.rtype, 33);
        assert_eq!(query.question.class, CLASS_IN);
        assert_eq!(parse_response(&bytes), Err(ParseError::NotAResponse));
    }

    #[test]
    fn query_encoding_rejects_bad_names() {
        let long_label = "a".repeat(64);
        assert_eq!(
            encode_query(1, "", RecordType::A),
            Err(EncodeError::BadLabel)
        );
        assert_eq!(
            encode_query(1, "a..b", RecordType::A),
            Err(EncodeError::BadLabel)
        );
        assert_eq!(
            encode_query(1, ".", RecordType::A),
            Err(EncodeError::BadLabel)
        );
        assert_eq!(
            encode_query(1, &long_label, RecordType::A),
            Err(EncodeError::LabelTooLong)
        );
        let long_name = ["abcdefghi"; 26].join(".");
        assert_eq!(
            encode_query(1, &long_name, RecordType::A),
            Err(EncodeError::NameTooLong)
        );
        let fits = ["abcdefghi"; 25].join(".");
        assert!(encode_query(1, &fits, RecordType::A).is_ok());
    }

    #[test]
    fn parses_naptr_srv_cname_aaaa_and_soa() {
        let samples = sample_responses();
        let naptrs = parse_response(&samples[0]).unwrap();
        assert_eq!(naptrs.id, 7);
        assert_eq!(naptrs.rcode, 0);
        assert_eq!(naptrs.question.name, "example.com");
        assert_eq!(
            naptrs.answers[1],
            Record {
                name: "example.com".into(),
                ttl: 300,
                data: naptr(20, 5, "s", "SIPS+D2T", "_sips._tcp.example.com"),
            }
        );
        let srvs = parse_response(&samples[1]).unwrap();
        assert_eq!(srvs.answers[0].data, srv(0, 5, 5060, "sip1.example.com"));
        assert_eq!(
            srvs.answers[1].data,
            srv(1, 0, 5080, ""),
            "target '.' is the root"
        );
        let chain = parse_response(&samples[2]).unwrap();
        assert_eq!(chain.answers.len(), 2);
        assert_eq!(chain.answers[1].name, "host.example.net");
        let negative = parse_response(&samples[3]).unwrap();
        assert_eq!(negative.rcode, 3);
        assert!(negative.answers.is_empty());
        assert_eq!(negative.negative_ttl, Some(120), "min(SOA TTL, MINIMUM)");
    }

    /// Header + question for `a.b` type A, then `ancount` answers appended by the caller.
    fn header_and_question(ancount: u16) -> Vec<u8> {
        let mut bytes = vec![0, 1, 0x81, 0x80, 0, 1];
        bytes.extend_from_slice(&ancount.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend_from_slice(&[1, b'A', 1, b'b', 0, 0, 1, 0, 1]); // offsets 12..21
        bytes
    }

    fn a_record_tail(bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    }

    #[test]
    fn compression_pointer_to_earlier_name_and_suffix() {
        let mut bytes = header_and_question(2);
        bytes.extend_from_slice(&[0xc0, 12]); // "a.b"
        a_record_tail(&mut bytes);
        bytes.extend_from_slice(&[3, b'W', b'w', b'w', 0xc0, 12]); // "www" + pointer
        a_record_tail(&mut bytes);
        let response = parse_response(&bytes).unwrap();
        assert_eq!(response.question.name, "a.b", "names are lower-cased");
        assert_eq!(response.answers[0].name, "a.b");
        assert_eq!(response.answers[1].name, "www.a.b");
        assert_eq!(
            response.answers[1].data,
            RecordData::A(Ipv4Addr::new(192, 0, 2, 1))
        );
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_rejected() {
        // A pointer to itself: the classic loop.
        let mut self_loop = header_and_question(1);
        self_loop.extend_from_slice(&[0xc0, 21]);
        a_record_tail(&mut self_loop);
        assert_eq!(parse_response(&self_loop), Err(ParseError::BadPointer));

        // Two labels pointing at each other: 21 -> 25 (forward) -> 21.
        let mut pair_loop = header_and_question(1);
        pair_loop.extend_from_slice(&[1, b'x', 0xc0, 25, 1, b'y', 0xc0, 21]);
        assert_eq!(parse_response(&pair_loop), Err(ParseError::BadPointer));

        // A label run that points back into its own middle also cycles.
        let mut into_self = header_and_question(1);
        into_self.extend_from_slice(&[1, b'x', 1, b'y', 0xc0, 23]);
        assert_eq!(parse_response(&into_self), Err(ParseError::BadPointer));

        // A pointer past the end of the message.
        let mut dangling = header_and_question(1);
        dangling.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(parse_response(&dangling), Err(ParseError::BadPointer));
    }

    #[test]
    fn odd_label_bytes_are_escaped_and_reserved_label_types_rejected() {
        let mut bytes = header_and_question(1);
        bytes.extend_from_slice(&[3, b'a', b'.', 0xff, 0]);
        a_record_tail(&mut bytes);
        assert_eq!(
            parse_response(&bytes).unwrap().answers[0].name,
            "a\\046\\255"
        );

        let mut extended = header_and_question(1);
        extended.extend_from_slice(&[0x41, 0]);
        assert_eq!(parse_response(&extended), Err(ParseError::BadLabelType));
    }

    #[test]
    fn overlong_names_are_rejected() {
        let mut bytes = header_and_question(1);
        for _ in 0..5 {
            bytes.push(63);
            bytes.extend_from_slice(&[b'a'; 63]);
        }
        bytes.push(0);
        a_record_tail(&mut bytes);
        assert_eq!(parse_response(&bytes), Err(ParseError::NameTooLong));
    }

    #[test]
    fn every_strict_prefix_of_a_response_is_an_error() {
        for sample in sample_responses() {
            for len in 0..sample.len() {
                assert!(
                    parse_response(&sample[..len]).is_err(),
                    "prefix of {len} of {} octets parsed",
                    sample.len()
                );
            }
        }
    }

    #[test]
    fn bad_rdata_lengths_and_trailing_rdata_are_rejected() {
        let mut short_a = header_and_question(1);
        short_a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 192, 0, 2]);
        assert_eq!(parse_response(&short_a), Err(ParseError::BadRdata));

        // CNAME whose RDATA claims one octet more than the name uses.
        let mut cname = header_and_question(1);
        cname.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 3, 0xc0, 12, 0]);
        assert_eq!(parse_response(&cname), Err(ParseError::BadRdata));

        // SRV target running past its RDATA into the next bytes.
        let mut srv = header_and_question(1);
        srv.extend_from_slice(&[
            0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 8, 0, 1, 0, 1, 0x13, 0xc4,
        ]);
        srv.extend_from_slice(&[1, b'h', 0]);
        assert_eq!(parse_response(&srv), Err(ParseError::Truncated));
    }

    #[test]
    fn truncation_bit_skips_record_sections() {
        let mut bytes = header_and_question(5); // counts lie; TC says sections may be cut
        bytes[2] |= 0x02;
        let response = parse_response(&bytes).unwrap();
        assert!(response.truncated);
        assert!(response.answers.is_empty());
    }

    #[test]
    fn other_classes_types_and_high_ttls() {
        let mut bytes = header_and_question(3);
        // CH class A record: skipped.
        bytes.extend_from_slice(&[0xc0, 12, 0, 1, 0, 3, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        // TXT record: skipped.
        bytes.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 1, b'x']);
        // A record with the TTL top bit set: read as 0 (RFC 2181 section 8).
        bytes.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0x80, 0, 0, 0, 0, 4, 10, 0, 0, 2]);
        let response = parse_response(&bytes).unwrap();
        assert_eq!(response.answers.len(), 1);
        assert_eq!(response.answers[0].ttl, 0);
        assert_eq!(
            response.answers[0].data,
            RecordData::A(Ipv4Addr::new(10, 0, 0, 2))
        );
    }

    /// The in-tree stand-in for the fuzz target (`fuzz/fuzz_targets/dns_message.rs`), which
    /// needs nightly: deterministic byte flips, insertions, deletions and splices of valid
    /// responses must never panic, and whatever parses must respect the bounds.
    #[test]
    fn mutated_responses_never_panic() {
        let samples = sample_responses();
        let mut rng = Rng::seed_from_u64(0x5eed);
        let mut parsed = 0usize;
        for round in 0..40_000 {
            let mut bytes = samples[round % samples.len()].clone();
            for _ in 0..=(rng.next_u64() % 4) {
                let at = (rng.next_u64() % (bytes.len() as u64 + 1)) as usize;
                let byte = rng.next_u64() as u8;
                match rng.next_u64() % 5 {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    3 if at + 1 < bytes.len() => {
                        // Plant a compression pointer anywhere.
                        bytes[at] = 0xc0 | (byte & 0x3f);
                        bytes[at + 1] = rng.next_u64() as u8;
                    }
                    _ => bytes.truncate(at),
                }
            }
            let _ = parse_query(&bytes);
            let _ = parse_response_question(&bytes);
            if let Ok(response) = parse_response(&bytes) {
                parsed += 1;
                for record in &response.answers {
                    assert!(record.name.len() <= 4 * MAX_NAME_WIRE_LEN);
                }
            }
        }
        // The mutations must leave some messages valid, or the test would only probe headers.
        assert!(parsed > 1_000, "only {parsed} mutated messages parsed");
    }
}
