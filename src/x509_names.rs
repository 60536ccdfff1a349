//! The subject alternative names of an X.509 certificate, as Go's `crypto/x509` prints them:
//! what `client_allowed_sans` of the web config compares with. Only the path to the
//! extension is read (certificate, to-be-signed part, extensions, SAN); the certificate
//! has been verified before this runs, and any structure this reader does not expect
//! yields no names (so nothing matches) rather than an error.

use std::net::{Ipv4Addr, Ipv6Addr};

/// DER tags on the path to the names.
const SEQUENCE: u8 = 0x30;
const EXTENSIONS: u8 = 0xa3;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// GeneralName choices (context-specific, primitive).
const EMAIL: u8 = 0x81;
const DNS: u8 = 0x82;
const URI: u8 = 0x86;
const IP: u8 = 0x87;

/// One DER element: its tag, its content and what follows it. `None` when the input is
/// not a well-formed element with a one-byte tag and a definite length.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed element's content, in order (stops at the first
/// malformed one).
fn elements(mut content: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, value, rest) = element(content)?;
        content = rest;
        Some((tag, value))
    })
}

/// The DNS names, e-mail addresses, URIs and IP addresses a DER certificate names, each as
/// Go prints it (IP addresses in Go's `net.IP` form: IPv4-mapped IPv6 addresses as IPv4).
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    let Some(general_names) = san_extension(der) else {
        return Vec::new();
    };
    elements(general_names)
        .filter_map(|(tag, value)| match tag {
            EMAIL | DNS | URI => std::str::from_utf8(value).ok().map(str::to_string),
            IP => ip_string(value),
            _ => None,
        })
        .collect()
}

/// The GeneralNames content of the subjectAltName extension, if the certificate has one.
fn san_extension(der: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, certificate, _) = element(der)? else { return None };
    let (SEQUENCE, tbs, _) = element(certificate)? else { return None };
    let (_, extensions) = elements(tbs).find(|(tag, _)| *tag == EXTENSIONS)?;
    let (SEQUENCE, list, _) = element(extensions)? else { return None };
    elements(list).filter(|(tag, _)| *tag == SEQUENCE).find_map(|(_, extension)| {
        let mut fields = elements(extension);
        let (OID, SUBJECT_ALT_NAME) = fields.next()? else { return None };
        // An optional `critical` BOOLEAN comes before the value.
        let (_, value) = fields.find(|(tag, _)| *tag == OCTET_STRING)?;
        let (SEQUENCE, names, _) = element(value)? else { return None };
        Some(names)
    })
}

fn ip_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            let v6 = Ipv6Addr::from(octets);
            Some(v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    /// A certificate-shaped DER: a to-be-signed part with a serial, an unrelated extension,
    /// then the SAN extension (marked critical) holding `names`; padded past 128 bytes so
    /// the long length form is read too.
    fn certificate(names: &[(u8, &[u8])]) -> Vec<u8> {
        let general: Vec<u8> = names.iter().flat_map(|(tag, v)| tlv(*tag, v)).collect();
        let san =
            [tlv(OID, SUBJECT_ALT_NAME), tlv(0x01, &[0xff]), tlv(OCTET_STRING, &tlv(SEQUENCE, &general))].concat();
        let other = [tlv(OID, &[0x55, 0x1d, 0x13]), tlv(OCTET_STRING, &tlv(SEQUENCE, &[]))].concat();
        let extensions = tlv(EXTENSIONS, &tlv(SEQUENCE, &[tlv(SEQUENCE, &other), tlv(SEQUENCE, &san)].concat()));
        let tbs = tlv(SEQUENCE, &[tlv(0x02, &[1]), tlv(0x04, &[0u8; 150]), extensions].concat());
        tlv(SEQUENCE, &[tbs, tlv(SEQUENCE, &[]), tlv(0x03, &[0])].concat())
    }

    #[test]
    fn every_kind_of_name_as_go_prints_it() {
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7];
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let der = certificate(&[
            (DNS, b"client.example"),
            (EMAIL, b"ops@example.org"),
            (URI, b"spiffe://cluster/ns/job"),
            (IP, &[127, 0, 0, 1]),
            (IP, &mapped),
            (IP, &v6),
            (0xa0, b"other name, skipped"),
        ]);
        assert_eq!(
            subject_alt_names(&der),
            ["client.example", "ops@example.org", "spiffe://cluster/ns/job", "127.0.0.1", "10.0.0.7", "2001:db8::1"]
        );
    }

    #[test]
    fn malformed_or_missing_structures_name_nothing() {
        let der = certificate(&[(DNS, b"a.example")]);
        for cut in 0..der.len() {
            assert!(subject_alt_names(&der[..cut]).is_empty(), "a certificate cut at {cut} named something");
        }
        assert!(subject_alt_names(&[]).is_empty());
        assert!(subject_alt_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_empty());
        let without = tlv(SEQUENCE, &tlv(SEQUENCE, &tlv(0x02, &[1])));
        assert!(subject_alt_names(&without).is_empty());
    }
}
