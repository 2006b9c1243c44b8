//! How an envelope's bytes are stored in the `envelopes` table, and read back.

use clawlet_events::EnvelopeJson;

/// Envelopes at least this long are written into the row in place rather than bound, and stored
/// as they are: compressing one would hold a second copy of a large body in memory.
pub(super) const STREAM_ENVELOPE_BYTES: usize = crate::store::LARGE_ENVELOPE_BYTES;

/// How an envelope's bytes are stored in `envelopes.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    /// The JSON's UTF-8 as it is.
    Raw = 0,
    /// An LZ4 block preceded by the JSON's length (4 bytes, little-endian). A GitHub push of
    /// 7.3 KB becomes about 2.2 KB: it fits in its table page, where the raw JSON took two
    /// overflow pages more, each written to the WAL and again to the database file.
    Lz4 = 1,
}

impl Codec {
    /// The LZ4 block to store for `json`, or `None` to store it as it is: when it is large (see
    /// [`STREAM_ENVELOPE_BYTES`]), or when compression saves less than an eighth, which is not
    /// worth a decompression on every read back.
    pub(crate) fn pack(json: &EnvelopeJson) -> Option<Vec<u8>> {
        // Checked before the text is asked for: a large envelope's text is in pieces, and
        // joining them would copy the whole body.
        if json.len() >= STREAM_ENVELOPE_BYTES {
            return None;
        }
        let json = json.text();
        let packed = lz4_flex::block::compress_prepend_size(json.as_bytes());
        (packed.len() <= json.len() - json.len() / 8).then_some(packed)
    }
}

/// Reads the envelope's JSON from the columns `envelope` (at `at`) and `codec` (just after it);
/// a row that cannot be decoded is an error.
pub(super) fn envelope_json(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<String> {
    stored_json(row, at)?.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Blob, e.into())
    })
}

/// [`envelope_json`], with a row that cannot be decoded given back as the reason (the outer
/// error is SQLite's).
pub(super) fn stored_json(
    row: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Result<String, String>> {
    let codec: i64 = row.get(at + 1)?;
    let bytes = row.get_ref(at)?.as_bytes()?;
    Ok(decode_envelope(bytes, codec))
}

fn decode_envelope(bytes: &[u8], codec: i64) -> Result<String, String> {
    let raw = match codec {
        c if c == Codec::Raw as i64 => bytes.to_vec(),
        c if c == Codec::Lz4 as i64 => {
            // The length is checked before it sizes a buffer: a damaged row cannot ask for 4 GiB.
            let (len, block) = lz4_flex::block::uncompressed_size(bytes)
                .map_err(|e| format!("damaged envelope: {e}"))?;
            if len >= STREAM_ENVELOPE_BYTES {
                return Err(format!("damaged envelope: claims {len} bytes"));
            }
            lz4_flex::block::decompress(block, len).map_err(|e| format!("damaged envelope: {e}"))?
        }
        other => return Err(format!("envelope stored with unknown codec {other}")),
    };
    String::from_utf8(raw).map_err(|e| format!("envelope is not UTF-8: {e}"))
}
