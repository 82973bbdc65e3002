//! ApiVersions (key 18), versions 0–3. An unsupported version gets UNSUPPORTED_VERSION with
//! the ranges in a v0 body (KIP-511), so the client can retry lower. The response header is
//! always v0. No feature tagged fields are written: old librdkafka rejects them.

use super::{error_code, respond, Reply, SUPPORTED};
use bytes::Bytes;
use spate_protocol::header::RequestHeader;
use spate_protocol::kafka_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse,
};
use spate_protocol::kafka_protocol::messages::{ApiKey, ResponseKind};

const MAX_VERSION: i16 = 3;

pub(super) fn handle(header: &RequestHeader, _body: Bytes) -> Reply {
    let ranges: Vec<ApiVersion> = SUPPORTED
        .iter()
        .map(|&(api, min, max)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    let mut response = ApiVersionsResponse::default().with_api_keys(ranges);
    let version = if (0..=MAX_VERSION).contains(&header.api_version) {
        header.api_version
    } else {
        response.error_code = error_code::UNSUPPORTED_VERSION;
        0
    };
    respond(
        header.correlation_id,
        ApiKey::ApiVersions,
        version,
        &ResponseKind::ApiVersions(response),
    )
}
