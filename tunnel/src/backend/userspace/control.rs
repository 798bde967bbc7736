//! The device's UAPI socket (`/var/run/wireguard/<ifname>.sock`), so that `wg show` and
//! `wg set` work on it as on any WireGuard interface. One thread serves it, one client at a
//! time (as the standard's implementations do); a client that stalls is cut off after
//! [`CLIENT_TIMEOUT`].

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::datapath::wait_readable;
use super::device::Shared;
use crate::wg::uapi::{self, encode_get, parse_set};

/// How long a client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a request may hold (a `set` for thousands of peers fits).
const MAX_REQUEST: usize = 4 << 20;
/// EINVAL, the answer to a request we cannot parse.
const EINVAL: i32 = 22;

/// Binds the UAPI socket of `ifname`: refuses one that another process serves, replaces a
/// stale one. Only root may connect (the socket can read our private key).
pub(super) fn bind(ifname: &str) -> io::Result<UnixListener> {
    std::fs::create_dir_all(uapi::SOCKET_DIR)?;
    let path = uapi::socket_path(ifname);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is served by another process", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    // Created private: with the umask of the moment, between bind and chmod anyone could
    // connect and read the private key. (The umask is process-wide; others creating files in
    // this instant get them private too, which is safe.)
    let previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(&path);
    nix::sys::stat::umask(previous);
    let listener = bound?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Removes the socket file (when the device stops).
pub(super) fn unlink(ifname: &str) {
    let _ = std::fs::remove_file(uapi::socket_path(ifname));
}

/// Serves clients until the device stops.
pub(super) fn serve(shared: Arc<Shared>, listener: UnixListener) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = client(&shared, stream) {
                    tracing::debug!(ifname = %shared.ifname, error = %e, "UAPI client dropped");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if wait_readable(&shared, [listener.as_fd()]).is_none() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(ifname = %shared.ifname, error = %e, "UAPI socket failed");
                if super::datapath::stopped_within(&shared, 1000) {
                    return;
                }
            }
        }
    }
}

/// Answers one client's requests (`get=1` or `set=1`, each ended by a blank line) until it
/// closes the connection.
fn client(shared: &Shared, stream: UnixStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut op = String::new();
        if reader.read_line(&mut op)? == 0 {
            return Ok(());
        }
        let mut body = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\n" {
                break;
            }
            body.push_str(&line);
            if body.len() > MAX_REQUEST {
                writer.write_all(format!("errno={EINVAL}\n\n").as_bytes())?;
                return Ok(());
            }
        }
        let answer = match op.trim_end() {
            "get=1" => {
                let (private, state, preshared) = shared.state();
                encode_get(private.as_ref(), &state, &preshared, SystemTime::now())
            }
            "set=1" => format!("errno={}\n\n", set(shared, &body)),
            other => {
                tracing::warn!(ifname = %shared.ifname, op = other, "UAPI: unknown operation");
                writer.write_all(format!("errno={EINVAL}\n\n").as_bytes())?;
                return Ok(());
            }
        };
        writer.write_all(answer.as_bytes())?;
    }
}

/// Applies a `set` body; the errno to answer.
fn set(shared: &Shared, body: &str) -> i32 {
    let request = match parse_set(body) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(ifname = %shared.ifname, error = %e, "UAPI set refused");
            return EINVAL;
        }
    };
    match shared.apply(&request) {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(ifname = %shared.ifname, error = %e.message, "UAPI set failed");
            e.errno
        }
    }
}
