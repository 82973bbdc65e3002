//! Typed requests and responses for every API key, on the `kafka-protocol` crate.
//!
//! Decoding untrusted bytes is two steps: [`crate::shape::check`] walks the body against
//! Kafka's schema for that API and version (bounding every array and string by the bytes
//! actually present), and only then does `kafka-protocol` build the typed value. The crate's
//! decoders size vectors from wire counts, so skipping the first step would let a 20-byte
//! frame ask for gigabytes.

use crate::header::{HeaderError, RequestHeader, ResponseHeader};
use crate::shape::{self, MessageKind, ShapeError};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

/// The most array elements, summed over the whole message, a decoded message may hold.
///
/// The shape check guarantees each element has at least a byte on the wire, but the typed
/// value spends tens of bytes of memory per element; this caps a decoded message near
/// 100 MiB of memory whatever the frame limit. Real requests stay far below it (a follower
/// fetch of 100 000 partitions is about 200 000 elements).
pub const MAX_ARRAY_ELEMENTS: u64 = 1 << 20;

/// Why a message could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The header is malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The API key is not one Kafka defines (that this build knows).
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The version is outside what this build can decode for the API.
    #[error("{api:?} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The requested version.
        version: i16,
        /// Lowest supported version.
        min: i16,
        /// Highest supported version.
        max: i16,
    },
    /// The body does not have the shape Kafka's schema gives it.
    #[error("malformed {api:?} v{version} body: {source}")]
    Shape {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// What is wrong.
        source: ShapeError,
    },
    /// The message holds more array elements than [`MAX_ARRAY_ELEMENTS`].
    #[error(
        "{api:?} v{version} holds {elements} array elements; the limit is {MAX_ARRAY_ELEMENTS}"
    )]
    TooManyElements {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// Elements found.
        elements: u64,
    },
    /// The body passed the shape check but the typed decoder refused it (bad UTF-8, say).
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Decode {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's message.
        reason: String,
    },
    /// A value cannot be written in the chosen version (a field that version lacks).
    #[error("cannot encode {api:?} v{version}: {reason}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The encoder's message.
        reason: String,
    },
    /// The request and the body passed to an encoder are for different APIs.
    #[error("header says {header:?} but the body is {body:?}")]
    ApiMismatch {
        /// The API in the header.
        header: ApiKey,
        /// The API of the body.
        body: ApiKey,
    },
}

/// A decoded request: its header and its typed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The header (correlation id, client id, …).
    pub header: RequestHeader,
    /// The typed body.
    pub body: RequestKind,
}

/// The API a header names, if known and if `version` is within what we can decode.
pub fn check_version(api_key: i16, version: i16) -> Result<ApiKey, CodecError> {
    let api = ApiKey::try_from(api_key).map_err(|()| CodecError::UnknownApiKey(api_key))?;
    let range = api.valid_versions();
    if version < range.min || version > range.max {
        return Err(CodecError::UnsupportedVersion {
            api,
            version,
            min: range.min,
            max: range.max,
        });
    }
    Ok(api)
}

/// Decodes a whole request frame (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Request, CodecError> {
    let header = RequestHeader::decode(&mut frame)?;
    let body = decode_request_body(&header, frame)?;
    Ok(Request { header, body })
}

/// Decodes a request body whose header has been read (so a caller can answer
/// UNSUPPORTED_VERSION with the header's correlation id when this fails).
pub fn decode_request_body(
    header: &RequestHeader,
    mut body: Bytes,
) -> Result<RequestKind, CodecError> {
    let version = header.api_version;
    let api = check_version(header.api_key, version)?;
    check_shape(MessageKind::Request, api, version, &body)?;
    RequestKind::decode(api, &mut body, version).map_err(|e| CodecError::Decode {
        api,
        version,
        reason: format!("{e:#}"),
    })
}

/// Appends a whole response frame (size prefix, header, body) to `out`.
pub fn encode_response(
    out: &mut BytesMut,
    correlation_id: i32,
    api: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> Result<(), CodecError> {
    if let Some(body_api) = response_api(body).filter(|&body_api| body_api != api) {
        return Err(CodecError::ApiMismatch {
            header: api,
            body: body_api,
        });
    }
    let start = out.len();
    out.put_i32(0);
    ResponseHeader { correlation_id }
        .encode_version(out, ResponseHeader::version_for(api, api_version));
    if let Err(e) = body.encode(out, api_version) {
        out.truncate(start);
        return Err(CodecError::Encode {
            api,
            version: api_version,
            reason: format!("{e:#}"),
        });
    }
    patch_size(out, start, api, api_version)
}

/// Appends a whole request frame (size prefix, header, body) to `out`.
pub fn encode_request(
    out: &mut BytesMut,
    header: &RequestHeader,
    body: &RequestKind,
) -> Result<(), CodecError> {
    let api = check_version(header.api_key, header.api_version)?;
    if let Some(body_api) = request_api(body).filter(|&body_api| body_api != api) {
        return Err(CodecError::ApiMismatch {
            header: api,
            body: body_api,
        });
    }
    let start = out.len();
    out.put_i32(0);
    header.encode(out);
    if let Err(e) = body.encode(out, header.api_version) {
        out.truncate(start);
        return Err(CodecError::Encode {
            api,
            version: header.api_version,
            reason: format!("{e:#}"),
        });
    }
    patch_size(out, start, api, header.api_version)
}

/// Decodes a response frame (without its size prefix) to a request of `api` at `api_version`;
/// returns the correlation id and the typed body.
pub fn decode_response(
    api: ApiKey,
    api_version: i16,
    mut frame: Bytes,
) -> Result<(i32, ResponseKind), CodecError> {
    check_version(api as i16, api_version)?;
    let header =
        ResponseHeader::decode_version(&mut frame, ResponseHeader::version_for(api, api_version))?;
    check_shape(MessageKind::Response, api, api_version, &frame)?;
    let body =
        ResponseKind::decode(api, &mut frame, api_version).map_err(|e| CodecError::Decode {
            api,
            version: api_version,
            reason: format!("{e:#}"),
        })?;
    Ok((header.correlation_id, body))
}

fn check_shape(
    kind: MessageKind,
    api: ApiKey,
    version: i16,
    body: &[u8],
) -> Result<(), CodecError> {
    let stats =
        shape::check(kind, api as i16, version, body).map_err(|source| CodecError::Shape {
            api,
            version,
            source,
        })?;
    if stats.total_array_elements > MAX_ARRAY_ELEMENTS {
        return Err(CodecError::TooManyElements {
            api,
            version,
            elements: stats.total_array_elements,
        });
    }
    Ok(())
}

fn patch_size(
    out: &mut BytesMut,
    start: usize,
    api: ApiKey,
    version: i16,
) -> Result<(), CodecError> {
    let size = out.len() - start - 4;
    let size = i32::try_from(size).map_err(|_| {
        out.truncate(start);
        CodecError::Encode {
            api,
            version,
            reason: format!("message of {size} bytes exceeds 2 GiB"),
        }
    })?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

macro_rules! api_of {
    ($fn_name:ident, $kind:ident, [$($variant:ident),* $(,)?]) => {
        /// The API key of a typed body (`None` only for APIs newer than this list).
        pub fn $fn_name(body: &$kind) -> Option<ApiKey> {
            match body {
                $($kind::$variant(_) => Some(ApiKey::$variant),)*
                _ => None,
            }
        }
    };
}

macro_rules! all_apis {
    ($mac:ident, $fn_name:ident, $kind:ident) => {
        $mac!(
            $fn_name,
            $kind,
            [
                Produce,
                Fetch,
                ListOffsets,
                Metadata,
                OffsetCommit,
                OffsetFetch,
                FindCoordinator,
                JoinGroup,
                Heartbeat,
                LeaveGroup,
                SyncGroup,
                DescribeGroups,
                ListGroups,
                SaslHandshake,
                ApiVersions,
                CreateTopics,
                DeleteTopics,
                DeleteRecords,
                InitProducerId,
                OffsetForLeaderEpoch,
                AddPartitionsToTxn,
                AddOffsetsToTxn,
                EndTxn,
                WriteTxnMarkers,
                TxnOffsetCommit,
                DescribeAcls,
                CreateAcls,
                DeleteAcls,
                DescribeConfigs,
                AlterConfigs,
                AlterReplicaLogDirs,
                DescribeLogDirs,
                SaslAuthenticate,
                CreatePartitions,
                CreateDelegationToken,
                RenewDelegationToken,
                ExpireDelegationToken,
                DescribeDelegationToken,
                DeleteGroups,
                ElectLeaders,
                IncrementalAlterConfigs,
                AlterPartitionReassignments,
                ListPartitionReassignments,
                OffsetDelete,
                DescribeClientQuotas,
                AlterClientQuotas,
                DescribeUserScramCredentials,
                AlterUserScramCredentials,
                Vote,
                BeginQuorumEpoch,
                EndQuorumEpoch,
                DescribeQuorum,
                AlterPartition,
                UpdateFeatures,
                Envelope,
                FetchSnapshot,
                DescribeCluster,
                DescribeProducers,
                BrokerRegistration,
                BrokerHeartbeat,
                UnregisterBroker,
                DescribeTransactions,
                ListTransactions,
                AllocateProducerIds,
                ConsumerGroupHeartbeat,
                ConsumerGroupDescribe,
                ControllerRegistration,
                GetTelemetrySubscriptions,
                PushTelemetry,
                AssignReplicasToDirs,
                ListConfigResources,
                DescribeTopicPartitions,
                ShareGroupHeartbeat,
                ShareGroupDescribe,
                ShareFetch,
                ShareAcknowledge,
                AddRaftVoter,
                RemoveRaftVoter,
                UpdateRaftVoter,
                InitializeShareGroupState,
                ReadShareGroupState,
                WriteShareGroupState,
                DeleteShareGroupState,
                ReadShareGroupStateSummary,
                DescribeShareGroupOffsets,
                AlterShareGroupOffsets,
                DeleteShareGroupOffsets,
            ]
        );
    };
}

all_apis!(api_of, request_api, RequestKind);
all_apis!(api_of, response_api, ResponseKind);
