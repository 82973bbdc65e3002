//! Request and response headers.
//!
//! ```text
//! request  v0: api_key int16, api_version int16, correlation_id int32
//!          v1: v0 + client_id nullable string (int16 length, -1 = null)
//!          v2: v1 + tagged fields (flexible API versions)
//! response v0: correlation_id int32
//!          v1: v0 + tagged fields (flexible API versions, except ApiVersions: always v0)
//! ```
//!
//! Which header version a message uses follows from its API key and version (the
//! `kafka-protocol` crate knows the table); the client id stays a nullable *non-compact*
//! string even in v2, as Kafka specifies.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use spate_model::varint::{read_unsigned_varint, VarintError};

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The frame ended inside the header.
    #[error("request header truncated in {0}")]
    Truncated(&'static str),
    /// The client id is not valid UTF-8.
    #[error("client_id is not valid UTF-8")]
    ClientIdNotUtf8,
    /// A string length below -1.
    #[error("client_id length {0} is invalid")]
    BadClientIdLength(i16),
    /// A malformed tagged-field varint.
    #[error("bad varint in header tagged fields: {0}")]
    Varint(#[from] VarintError),
}

/// A request header of any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The raw API key (it may be one this build does not know).
    pub api_key: i16,
    /// The API version the client chose.
    pub api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
    /// The client's self-chosen id (v1+), if any.
    pub client_id: Option<StrBytes>,
    /// Tagged fields (v2), none of which Kafka defines for requests yet: kept raw.
    pub tagged_fields: Vec<(u32, Bytes)>,
}

impl RequestHeader {
    /// A header for a client to send.
    pub fn new(
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        client_id: Option<&str>,
    ) -> RequestHeader {
        RequestHeader {
            api_key: api_key as i16,
            api_version,
            correlation_id,
            client_id: client_id.map(|id| StrBytes::from_string(id.to_string())),
            tagged_fields: Vec::new(),
        }
    }

    /// The API, if this build knows its key.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }

    /// The header version requests of this API and version use (1 for unknown keys, so the
    /// correlation id can still be read).
    pub fn version_for(api_key: i16, api_version: i16) -> i16 {
        match ApiKey::try_from(api_key) {
            Ok(api) => api.request_header_version(api_version),
            Err(()) => 1,
        }
    }

    /// Reads the header at the front of `frame` and advances past it; the rest is the body.
    pub fn decode(frame: &mut Bytes) -> Result<RequestHeader, HeaderError> {
        let (api_key, api_version) = match frame.first_chunk::<4>() {
            Some(b) => (
                i16::from_be_bytes([b[0], b[1]]),
                i16::from_be_bytes([b[2], b[3]]),
            ),
            None => return Err(HeaderError::Truncated("api_key/api_version")),
        };
        RequestHeader::decode_version(frame, RequestHeader::version_for(api_key, api_version))
    }

    /// Reads a header of the given header version (0, 1 or 2).
    pub fn decode_version(
        frame: &mut Bytes,
        header_version: i16,
    ) -> Result<RequestHeader, HeaderError> {
        if frame.remaining() < 8 {
            return Err(HeaderError::Truncated("api_key/api_version/correlation_id"));
        }
        let api_key = frame.get_i16();
        let api_version = frame.get_i16();
        let correlation_id = frame.get_i32();
        let client_id = if header_version >= 1 {
            read_client_id(frame)?
        } else {
            None
        };
        let tagged_fields = if header_version >= 2 {
            read_tagged_fields(frame)?
        } else {
            Vec::new()
        };
        Ok(RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
            tagged_fields,
        })
    }

    /// Appends the header in the version its API and version call for.
    pub fn encode(&self, out: &mut BytesMut) {
        self.encode_version(
            out,
            RequestHeader::version_for(self.api_key, self.api_version),
        );
    }

    /// Appends the header in the given header version.
    pub fn encode_version(&self, out: &mut BytesMut, header_version: i16) {
        out.put_i16(self.api_key);
        out.put_i16(self.api_version);
        out.put_i32(self.correlation_id);
        if header_version >= 1 {
            match &self.client_id {
                None => out.put_i16(-1),
                Some(id) => {
                    // Client ids come from our own configuration; Kafka caps strings at i16.
                    let len = i16::try_from(id.len()).unwrap_or(i16::MAX);
                    out.put_i16(len);
                    out.extend_from_slice(&id.as_bytes()[..len as usize]);
                }
            }
        }
        if header_version >= 2 {
            write_tagged_fields(out, &self.tagged_fields);
        }
    }
}

/// A response header of any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The request's correlation id.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// The header version responses of this API and version use (ApiVersions: always 0).
    pub fn version_for(api_key: ApiKey, api_version: i16) -> i16 {
        api_key.response_header_version(api_version)
    }

    /// Appends the header: the correlation id, and an empty tagged-field section in v1.
    pub fn encode_version(&self, out: &mut BytesMut, header_version: i16) {
        out.put_i32(self.correlation_id);
        if header_version >= 1 {
            out.put_u8(0);
        }
    }

    /// Reads a response header of the given version, skipping any tagged fields.
    pub fn decode_version(
        frame: &mut Bytes,
        header_version: i16,
    ) -> Result<ResponseHeader, HeaderError> {
        if frame.remaining() < 4 {
            return Err(HeaderError::Truncated("correlation_id"));
        }
        let correlation_id = frame.get_i32();
        if header_version >= 1 {
            read_tagged_fields(frame)?;
        }
        Ok(ResponseHeader { correlation_id })
    }
}

fn read_client_id(frame: &mut Bytes) -> Result<Option<StrBytes>, HeaderError> {
    if frame.remaining() < 2 {
        return Err(HeaderError::Truncated("client_id length"));
    }
    let len = frame.get_i16();
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| HeaderError::BadClientIdLength(len))?;
    if frame.remaining() < len {
        return Err(HeaderError::Truncated("client_id"));
    }
    StrBytes::from_utf8(frame.split_to(len))
        .map(Some)
        .map_err(|_| HeaderError::ClientIdNotUtf8)
}

fn read_uvarint(frame: &mut Bytes) -> Result<u32, HeaderError> {
    let (value, len) = read_unsigned_varint(frame)?;
    frame.advance(len);
    Ok(value)
}

fn read_tagged_fields(frame: &mut Bytes) -> Result<Vec<(u32, Bytes)>, HeaderError> {
    let count = read_uvarint(frame)?;
    // Each field takes at least two bytes (tag and size), which bounds the count.
    if count as usize > frame.remaining() / 2 {
        return Err(HeaderError::Truncated("tagged fields"));
    }
    let mut fields = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let tag = read_uvarint(frame)?;
        let size = read_uvarint(frame)? as usize;
        if frame.remaining() < size {
            return Err(HeaderError::Truncated("tagged field"));
        }
        fields.push((tag, frame.split_to(size)));
    }
    Ok(fields)
}

pub(crate) fn write_uvarint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn write_tagged_fields(out: &mut BytesMut, fields: &[(u32, Bytes)]) {
    write_uvarint(out, u32::try_from(fields.len()).unwrap_or(u32::MAX));
    for (tag, value) in fields {
        write_uvarint(out, *tag);
        write_uvarint(out, u32::try_from(value.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_header_version_round_trips() {
        for version in 0..=2 {
            let mut header = RequestHeader::new(ApiKey::Metadata, 12, 99, Some("spate-test"));
            if version == 0 {
                header.client_id = None;
            }
            if version == 2 {
                header.tagged_fields.push((5, Bytes::from_static(b"xy")));
            }
            let mut out = BytesMut::new();
            header.encode_version(&mut out, version);
            let expected_len = [8, 20, 25][version as usize];
            assert_eq!(out.len(), expected_len, "v{version}");
            let mut frame = out.freeze();
            assert_eq!(
                RequestHeader::decode_version(&mut frame, version),
                Ok(header)
            );
            assert!(frame.is_empty());
        }
    }

    #[test]
    fn header_version_follows_the_api() {
        assert_eq!(RequestHeader::version_for(ApiKey::Metadata as i16, 8), 1);
        assert_eq!(RequestHeader::version_for(ApiKey::Metadata as i16, 9), 2);
        assert_eq!(RequestHeader::version_for(ApiKey::ApiVersions as i16, 3), 2);
        assert_eq!(ResponseHeader::version_for(ApiKey::ApiVersions, 3), 0);
        assert_eq!(ResponseHeader::version_for(ApiKey::Fetch, 12), 1);
        assert_eq!(RequestHeader::version_for(-7, 0), 1);
    }

    #[test]
    fn truncated_and_malformed_headers_are_errors() {
        let mut short = Bytes::from_static(&[0, 3, 0]);
        assert!(matches!(
            RequestHeader::decode(&mut short),
            Err(HeaderError::Truncated(_))
        ));
        let mut bad_len = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe]);
        assert_eq!(
            RequestHeader::decode(&mut bad_len),
            Err(HeaderError::BadClientIdLength(-2))
        );
        let mut long_id = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 9, b'a']);
        assert_eq!(
            RequestHeader::decode(&mut long_id),
            Err(HeaderError::Truncated("client_id"))
        );
        let mut not_utf8 = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 1, 0xff]);
        assert_eq!(
            RequestHeader::decode(&mut not_utf8),
            Err(HeaderError::ClientIdNotUtf8)
        );
        // v2 with a tagged-field count far beyond the bytes.
        let mut tags = Bytes::from_static(&[0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0x7f]);
        assert!(RequestHeader::decode(&mut tags).is_err());
    }
}
