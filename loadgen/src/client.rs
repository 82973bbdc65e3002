//! A minimal Kafka client on the `protocol` crate: one connection, requests answered in order,
//! version negotiation from ApiVersions. Enough for producing load; it knows nothing of Spate.

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use spate_protocol::header::RequestHeader;
use spate_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestKind, ResponseKind,
};
use spate_protocol::{decode_response, encode_request, FrameDecoder};
use std::collections::HashMap;

/// The largest response frame accepted.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Why talking to a broker failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection failed or closed.
    #[error("connection to {address}: {reason}")]
    Connection {
        /// The broker.
        address: String,
        /// What happened.
        reason: String,
    },
    /// A request or response could not be encoded or decoded.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The broker does not serve a version this client can use.
    #[error("the broker serves no usable {api:?} version")]
    NoVersion {
        /// The API.
        api: ApiKey,
    },
}

/// One connection to one broker.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: TcpStream,
    buffer: BytesMut,
    correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects and learns the broker's API versions.
    pub async fn connect(address: &str) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| ClientError::Connection {
                address: address.to_string(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            address: address.to_string(),
            stream,
            buffer: BytesMut::new(),
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let response = connection
            .call(
                ApiKey::ApiVersions,
                0,
                RequestKind::ApiVersions(ApiVersionsRequest::default()),
            )
            .await?;
        let ResponseKind::ApiVersions(versions) = response else {
            return Err(ClientError::Protocol(
                "ApiVersions answered with another API".into(),
            ));
        };
        connection.versions = versions
            .api_keys
            .iter()
            .map(|v| (v.api_key, (v.min_version, v.max_version)))
            .collect();
        Ok(connection)
    }

    /// The highest version of `api` both sides serve, within `ours`.
    pub fn version(&self, api: ApiKey, ours: (i16, i16)) -> Result<i16, ClientError> {
        let (min, max) = self
            .versions
            .get(&(api as i16))
            .copied()
            .ok_or(ClientError::NoVersion { api })?;
        let version = max.min(ours.1);
        if version < min.max(ours.0) {
            return Err(ClientError::NoVersion { api });
        }
        Ok(version)
    }

    fn lost(&self, reason: impl ToString) -> ClientError {
        ClientError::Connection {
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_only(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<(), ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::new(api, version, self.correlation_id, Some("spate-loadgen"));
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream.write_all(&out).await.map_err(|e| self.lost(e))
    }

    /// Sends one request and waits for its response.
    pub async fn call(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::new(api, version, self.correlation_id, Some("spate-loadgen"));
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| self.lost(e))?;
        let frame = self.read_frame().await?;
        let (correlation_id, response) = decode_response(api, version, frame)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if correlation_id != self.correlation_id {
            return Err(ClientError::Protocol(format!(
                "response {correlation_id} to request {}",
                self.correlation_id
            )));
        }
        Ok(response)
    }

    async fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let decoder = FrameDecoder::new(MAX_RESPONSE_BYTES);
        let mut chunk = vec![0_u8; 64 * 1024];
        loop {
            if let Some(frame) = decoder
                .decode(&mut self.buffer)
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return Ok(frame);
            }
            let read = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| self.lost(e))?;
            if read == 0 {
                return Err(self.lost("closed by the broker"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}
