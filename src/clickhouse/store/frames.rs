//! ClickHouse's native compressed frames, the form of an INSERT's body sent with
//! `decompress=1`: per frame a 16-byte CityHash128 (v1.0.2) checksum of what follows, the method
//! byte (`0x82`, LZ4), the frame's size from the method byte on and the raw size (both `u32`
//! little-endian), then one LZ4 block.
//!
//! The store compresses a batch's blocks into frames before it opens the request: each frame is
//! allocated to its size (the batch is held a second time only as compressed), and the sink's
//! compressing does not overlap the server's parsing of the same INSERT (on a machine the two
//! share, that overlap lengthened the tail of the sink's answers).

use bytes::Bytes;

const CHECKSUM: usize = 16;
const HEADER: usize = 9;
const LZ4: u8 = 0x82;

/// Compresses blocks into frames, reusing one scratch buffer.
#[derive(Default)]
pub(super) struct Framer {
    scratch: Vec<u8>,
}

impl Framer {
    /// `block` as one LZ4 frame, in a buffer of exactly its size.
    pub fn lz4(&mut self, block: &[u8]) -> Result<Bytes, String> {
        let raw = u32::try_from(block.len()).map_err(|_| "a block over 4 GiB".to_string())?;
        let bound = HEADER + lz4_flex::block::get_maximum_output_size(block.len());
        if self.scratch.len() < bound {
            self.scratch.resize(bound, 0);
        }
        let n = lz4_flex::block::compress_into(block, &mut self.scratch[HEADER..])
            .map_err(|e| format!("compressing a block: {e}"))?;
        let sized = u32::try_from(HEADER + n).map_err(|_| "a frame over 4 GiB".to_string())?;
        let body = &mut self.scratch[..HEADER + n];
        body[0] = LZ4;
        body[1..5].copy_from_slice(&sized.to_le_bytes());
        body[5..9].copy_from_slice(&raw.to_le_bytes());
        let checksum = cityhash_rs::cityhash_102_128(body).rotate_right(64);
        let mut frame = Vec::with_capacity(CHECKSUM + body.len());
        frame.extend_from_slice(&checksum.to_le_bytes());
        frame.extend_from_slice(body);
        Ok(Bytes::from(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one frame back: checks its checksum and sizes, returns the raw block.
    fn unframe(frame: &[u8]) -> Vec<u8> {
        let (sum, body) = frame.split_at(CHECKSUM);
        let want = cityhash_rs::cityhash_102_128(body).rotate_right(64);
        assert_eq!(sum, want.to_le_bytes(), "checksum");
        assert_eq!(body[0], LZ4);
        let sized = u32::from_le_bytes(body[1..5].try_into().unwrap()) as usize;
        let raw = u32::from_le_bytes(body[5..9].try_into().unwrap()) as usize;
        assert_eq!(
            sized,
            body.len(),
            "the frame's size counts the method byte on"
        );
        lz4_flex::block::decompress(&body[HEADER..], raw).unwrap()
    }

    #[test]
    fn frames_hold_their_blocks_and_are_sized_to_the_byte() {
        let mut framer = Framer::default();
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("row {i} {}\n", i % 7).into_bytes())
            .collect();
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for block in [&text[..], &noise[..], b"x", b""] {
            let frame = framer.lz4(block).unwrap();
            assert_eq!(unframe(&frame), block);
        }
        // A shorter block after a longer one: the scratch's leftovers are not in the frame.
        let long = framer.lz4(&text).unwrap();
        let short = framer.lz4(b"abc").unwrap();
        assert!(short.len() < 64 && long.len() > 64);
        assert_eq!(unframe(&short), b"abc");
    }
}
