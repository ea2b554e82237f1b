//! Vectored writing of a batch of shared buffers.
//!
//! Fan-out cost is dominated by system calls, so a player's whole queue goes out in
//! as few `writev` calls as the kernel allows, without copying the shared bytes.
//! Generic over the writer: a TCP half does `writev`; a TLS stream seals the slices
//! into records (rustls' `write_vectored`), then writes those in one go.

use std::io::IoSlice;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The most slices handed to one `writev` (Linux IOV_MAX is 1024); 128 slices of
/// media are more than one flush interval holds at ordinary bitrates.
const MAX_IOV: usize = 128;

/// Writes every buffer of `bufs` in order, then clears it.
pub async fn write_all_vectored<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    bufs: &mut Vec<Bytes>,
) -> std::io::Result<u64> {
    let mut written_total = 0u64;
    let mut first = 0usize;
    while first < bufs.len() {
        let n = {
            // On the stack: no allocation per write.
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slot, b) in slices.iter_mut().zip(&bufs[first..]) {
                *slot = IoSlice::new(b);
                count += 1;
            }
            w.write_vectored(&slices[..count]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written_total += n as u64;
        let mut left = n;
        while left > 0 && first < bufs.len() {
            let len = bufs[first].len();
            if left >= len {
                left -= len;
                first += 1;
            } else {
                bufs[first].advance(left);
                left = 0;
            }
        }
        while first < bufs.len() && bufs[first].is_empty() {
            first += 1;
        }
    }
    bufs.clear();
    Ok(written_total)
}
