//! Test-only response encoder: builds the bytes a DNS server would send, so the parser,
//! resolver and locator tests work from real wire messages rather than from parsed structs.

use super::wire::{self, encode_name, CLASS_IN};
use super::{Naptr, RecordData, RecordType, Srv};

/// Builds one response datagram.
pub(crate) struct ResponseBuilder {
    id: u16,
    flags: u16,
    qname: String,
    qtype: u16,
    answers: Vec<(String, u32, RecordData)>,
    soa: Option<(u32, u32)>,
    compress_owner: bool,
}

impl ResponseBuilder {
    /// A NOERROR response to `name`/`rtype` with RD and RA set.
    pub fn new(id: u16, name: &str, rtype: RecordType) -> Self {
        ResponseBuilder {
            id,
            flags: 0x8180,
            qname: name.to_string(),
            qtype: rtype.code(),
            answers: Vec::new(),
            soa: None,
            compress_owner: true,
        }
    }

    /// A NOERROR response echoing the id and question of `query` (as sent by the resolver).
    pub fn answering(query: &[u8]) -> Self {
        let query = wire::parse_query(query).expect("the resolver sent a valid query");
        let mut builder = ResponseBuilder::new(query.id, &query.question.name, RecordType::A);
        builder.qtype = query.question.rtype;
        builder
    }

    /// Sets the RCODE.
    pub fn rcode(mut self, rcode: u8) -> Self {
        self.flags = (self.flags & !0x000f) | u16::from(rcode);
        self
    }

    /// Sets the TC bit.
    pub fn truncated(mut self) -> Self {
        self.flags |= 0x0200;
        self
    }

    /// Writes answer owner names in full instead of as pointers to the question.
    pub fn uncompressed(mut self) -> Self {
        self.compress_owner = false;
        self
    }

    /// Adds an answer record.
    pub fn answer(mut self, owner: &str, ttl: u32, data: RecordData) -> Self {
        self.answers.push((owner.to_string(), ttl, data));
        self
    }

    /// Adds an SOA record to the authority section, for negative caching.
    pub fn soa(mut self, ttl: u32, minimum: u32) -> Self {
        self.soa = Some((ttl, minimum));
        self
    }

    /// The datagram.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(self.answers.len() as u16).to_be_bytes());
        out.extend_from_slice(&u16::from(self.soa.is_some()).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        encode_name(&self.qname, &mut out).expect("test names are valid");
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        for (owner, ttl, data) in &self.answers {
            if self.compress_owner && owner.eq_ignore_ascii_case(&self.qname) {
                out.extend_from_slice(&[0xc0, 12]);
            } else {
                encode_name(owner, &mut out).expect("test names are valid");
            }
            out.extend_from_slice(&data.rtype().code().to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            let rdata = encode_rdata(data);
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        if let Some((ttl, minimum)) = self.soa {
            // Owner: pointer to the question name (a zone apex would do as well).
            out.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1]);
            out.extend_from_slice(&ttl.to_be_bytes());
            let mut rdata = Vec::new();
            encode_name("ns.test", &mut rdata).expect("valid");
            encode_name("hostmaster.test", &mut rdata).expect("valid");
            for value in [1u32, 7200, 900, 1_209_600, minimum] {
                rdata.extend_from_slice(&value.to_be_bytes());
            }
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }
}

fn encode_rdata(data: &RecordData) -> Vec<u8> {
    let mut out = Vec::new();
    match data {
        RecordData::A(ip) => out.extend_from_slice(&ip.octets()),
        RecordData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
        RecordData::Cname(target) => encode_name(target, &mut out).expect("valid"),
        RecordData::Srv(srv) => {
            for value in [srv.priority, srv.weight, srv.port] {
                out.extend_from_slice(&value.to_be_bytes());
            }
            encode_target(&srv.target, &mut out);
        }
        RecordData::Naptr(naptr) => {
            out.extend_from_slice(&naptr.order.to_be_bytes());
            out.extend_from_slice(&naptr.preference.to_be_bytes());
            for text in [&naptr.flags, &naptr.services, &naptr.regexp] {
                out.push(text.len() as u8);
                out.extend_from_slice(text.as_bytes());
            }
            encode_target(&naptr.replacement, &mut out);
        }
    }
    out
}

/// Like `encode_name`, but `""` is the root name (SRV target `.`).
fn encode_target(name: &str, out: &mut Vec<u8>) {
    if name.is_empty() || name == "." {
        out.push(0);
    } else {
        encode_name(name, out).expect("valid");
    }
}

/// SRV RDATA for tests.
pub(crate) fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RecordData {
    RecordData::Srv(Srv {
        priority,
        weight,
        port,
        target: target.to_string(),
    })
}

/// NAPTR RDATA for tests, with an empty regexp as RFC 3263 uses.
pub(crate) fn naptr(
    order: u16,
    preference: u16,
    flags: &str,
    services: &str,
    replacement: &str,
) -> RecordData {
    RecordData::Naptr(Naptr {
        order,
        preference,
        flags: flags.to_string(),
        services: services.to_string(),
        regexp: String::new(),
        replacement: replacement.to_string(),
    })
}
