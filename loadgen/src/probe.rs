//! The network limit the benchmarks compare against: TCP bandwidth over loopback between
//! two glommio executors (threads), one stream, the way a broker shard and a client talk on
//! one machine.
//!
//! Napkin math: loopback TCP is two memory copies per byte (into the socket buffer and out
//! of it) plus syscall and wake-up costs, spread over two cores: a few GiB/s on this class of
//! machine — well above the disk, so a catch-up read should be disk-bound, not
//! network-bound. On a 2-core machine the two executors take both cores.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes per write and per read.
const CHUNK_BYTES: usize = 256 * 1024;

/// Sends up to `max_bytes` (stopping after `max_time`) from one executor to another over
/// 127.0.0.1 and returns the receiver's bandwidth in MiB/s.
pub fn loopback_tcp(max_bytes: u64, max_time: Duration) -> Result<f64, String> {
    let (port_tx, port_rx) = mpsc::channel::<Result<u16, String>>();
    let receiver = std::thread::Builder::new()
        .name("probe-receiver".to_string())
        .spawn(move || {
            crate::run::on_executor("probe-receiver", move || async move {
                let listener = match TcpListener::bind("127.0.0.1:0") {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = port_tx.send(Err(e.to_string()));
                        return Err(e.to_string());
                    }
                };
                let port = listener.local_addr().map_err(|e| e.to_string())?.port();
                let _ = port_tx.send(Ok(port));
                let mut stream = listener.accept().await.map_err(|e| e.to_string())?;
                let mut buffer = vec![0_u8; CHUNK_BYTES];
                let mut received = 0_u64;
                let mut started = None;
                loop {
                    let read = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
                    if read == 0 {
                        break;
                    }
                    started.get_or_insert_with(Instant::now);
                    received += read as u64;
                }
                let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
                Ok::<_, String>((received, seconds))
            })
        })
        .map_err(|e| format!("cannot start the receiver: {e}"))?;
    let port = port_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("the receiver did not start: {e}"))??;
    let sent = crate::run::on_executor("probe-sender", move || async move {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let chunk = vec![0x5a_u8; CHUNK_BYTES];
        let started = Instant::now();
        let mut sent = 0_u64;
        while sent < max_bytes && started.elapsed() < max_time {
            stream.write_all(&chunk).await.map_err(|e| e.to_string())?;
            sent += CHUNK_BYTES as u64;
        }
        stream.close().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(sent)
    })??;
    let (received, seconds) = receiver
        .join()
        .map_err(|_| "the receiver panicked".to_string())???;
    if received != sent {
        return Err(format!("sent {sent} bytes but {received} arrived"));
    }
    if seconds <= 0.0 {
        return Err("nothing was received".to_string());
    }
    Ok(received as f64 / (1024.0 * 1024.0) / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_moves_every_byte_and_reports_a_bandwidth() {
        let mib_s = loopback_tcp(64 << 20, Duration::from_secs(5)).expect("probe");
        assert!(mib_s > 0.0 && mib_s.is_finite(), "{mib_s}");
    }
}
