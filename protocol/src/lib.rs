//! The Kafka wire codec, sans-IO: length-prefixed framing with a size cap checked before any
//! allocation, request and response headers (v0–v2, with tagged fields), typed decoding of
//! every request and encoding of every response on top of the `kafka-protocol` crate (and the
//! reverse direction for clients such as the load generator), a schema-driven shape check that
//! runs before that crate sees untrusted bytes, and a hand-written FetchResponse encoder that
//! references record data as chunks instead of copying it.
//!
//! Depends on `spate-model` only (plus `bytes` and `kafka-protocol`). It never touches sockets,
//! glommio, files or the clock: bytes in, values out, and back.

pub mod codec;
pub mod fetch;
pub mod frame;
pub mod header;
pub mod shape;

pub use codec::{
    decode_request, decode_request_body, decode_response, encode_request, encode_response,
    CodecError, Request,
};
pub use fetch::{encode_fetch_response, Rope};
pub use frame::{FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
pub use header::{HeaderError, RequestHeader, ResponseHeader};

/// The `kafka-protocol` crate's message types, re-exported so callers name one version of it.
pub use kafka_protocol;
pub use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
