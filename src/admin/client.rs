//! A small client of the admin endpoint, for `mcwan status --gateway ADDR`.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;

/// Fetches `path` (with its query) from the admin endpoint at `addr` and returns the body.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach the gateway's admin endpoint at {addr}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, addr)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(status.is_success(), "{addr}{path}: HTTP {status}: {text}");
    Ok(text)
}
