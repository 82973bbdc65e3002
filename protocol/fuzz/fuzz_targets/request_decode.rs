//! Bodies for every API key and version, as requests (what the broker decodes) and as
//! responses (what the load generator decodes). The first three bytes pick the message: API
//! index, version within the API's range, direction. Whatever decodes must re-encode, and
//! re-encoding is a fixed point (decode → encode → decode → encode gives the same bytes) —
//! except with unknown tagged fields, which kafka-protocol 0.18 does not re-encode faithfully
//! (it counts all of them but writes only those whose tag is above the known ones), so there
//! only re-encoding without a panic is checked. The broker never re-encodes client messages.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use spate_protocol::header::RequestHeader;
use spate_protocol::shape::{self, MessageKind};
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use spate_protocol::{decode_request_body, decode_response, encode_request, encode_response};

fuzz_target!(|data: &[u8]| {
    let [api_index, version_byte, direction, body @ ..] = data else { return };
    let apis: Vec<ApiKey> = ApiKey::iter().collect();
    let api = apis[usize::from(*api_index) % apis.len()];
    let range = api.valid_versions();
    let span = (range.max - range.min + 1) as u8;
    let version = range.min + i16::from(version_byte % span);
    let body = Bytes::copy_from_slice(body);
    if direction % 2 == 0 {
        request(api, version, body);
    } else {
        response(api, version, body);
    }
});

fn has_unknown_tags(kind: MessageKind, api: ApiKey, version: i16, body: &[u8]) -> bool {
    shape::check(kind, api as i16, version, body).map_or(true, |stats| stats.unknown_tagged_fields > 0)
}

fn request(api: ApiKey, version: i16, body: Bytes) {
    let header = RequestHeader::new(api, version, 1, Some("fuzz"));
    let unknown_tags = has_unknown_tags(MessageKind::Request, api, version, &body);
    let Ok(decoded) = decode_request_body(&header, body) else { return };
    let first = encode_request_bytes(&header, &decoded);
    if unknown_tags {
        return;
    }
    let again = decode_request_body(&header, first.clone()).expect("re-decode of our own encoding");
    assert_eq!(first, encode_request_bytes(&header, &again), "{api:?} v{version} request not a fixed point");
}

fn encode_request_bytes(header: &RequestHeader, body: &RequestKind) -> Bytes {
    let mut out = BytesMut::new();
    encode_request(&mut out, header, body).expect("re-encode of a decoded request");
    let mut frame = out.freeze().split_off(4);
    RequestHeader::decode(&mut frame).expect("our own header");
    frame
}

fn response(api: ApiKey, version: i16, body: Bytes) {
    let mut frame = BytesMut::from(&0_i32.to_be_bytes()[..]);
    if api.response_header_version(version) >= 1 {
        frame.extend_from_slice(&[0]);
    }
    frame.extend_from_slice(&body);
    let unknown_tags = has_unknown_tags(MessageKind::Response, api, version, &body);
    let Ok((_, decoded)) = decode_response(api, version, frame.freeze()) else { return };
    let first = encode_response_bytes(api, version, &decoded);
    if unknown_tags {
        return;
    }
    let (_, again) = decode_response(api, version, first.clone().split_off(4)).expect("re-decode of our own encoding");
    assert_eq!(first, encode_response_bytes(api, version, &again), "{api:?} v{version} response not a fixed point");
}

fn encode_response_bytes(api: ApiKey, version: i16, body: &ResponseKind) -> Bytes {
    let mut out = BytesMut::new();
    encode_response(&mut out, 0, api, version, body).expect("re-encode of a decoded response");
    out.freeze()
}
