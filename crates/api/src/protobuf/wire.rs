//! The protobuf wire format: tags, varints, fixed-width numbers and length-delimited
//! fields. Knows nothing of Kubernetes types.

use super::ProtobufError;

/// One field value as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Wire<'_> {
    /// The protobuf wire type number, for error messages.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "fixed64",
            Wire::Bytes(_) => "length-delimited",
            Wire::Fixed32(_) => "fixed32",
        }
    }
}

/// Walks the fields of one encoded message.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads a base-128 varint of at most ten bytes.
    pub(super) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::malformed("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::malformed("varint longer than ten bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtobufError> {
        let end =
            self.pos.checked_add(len).filter(|end| *end <= self.buf.len()).ok_or_else(|| {
                ProtobufError::malformed("field runs past the end of its message")
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtobufError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        self.fixed::<8>().map(u64::from_le_bytes)
    }

    pub(super) fn fixed32(&mut self) -> Result<u32, ProtobufError> {
        self.fixed::<4>().map(u32::from_le_bytes)
    }

    /// Reads the next field: its number and value. `None` at the end of the message.
    pub(super) fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtobufError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| ProtobufError::malformed("invalid field number"))?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::malformed("length does not fit in memory"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            3 | 4 => {
                return Err(ProtobufError::malformed("protobuf groups are not used by Kubernetes"))
            }
            _ => return Err(ProtobufError::malformed("unknown wire type")),
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 300, field 2 fixed64 1, field 3 bytes "hi", field 4 fixed32 7
        let buf =
            [0x08, 0xac, 0x02, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x1a, 2, b'h', b'i', 0x25, 7, 0, 0, 0];
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field().unwrap(), Some((1, Wire::Varint(300))));
        assert_eq!(r.next_field().unwrap(), Some((2, Wire::Fixed64(1))));
        assert_eq!(r.next_field().unwrap(), Some((3, Wire::Bytes(b"hi"))));
        assert_eq!(r.next_field().unwrap(), Some((4, Wire::Fixed32(7))));
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn rejects_truncated_and_overlong_input() {
        assert!(Reader::new(&[0x08]).next_field().is_err());
        assert!(Reader::new(&[0x0a, 5, b'a']).next_field().is_err());
        assert!(Reader::new(&[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1
        ])
        .next_field()
        .is_err());
        assert!(Reader::new(&[0x0b]).next_field().is_err(), "groups are rejected");
        assert!(Reader::new(&[0x00, 1]).next_field().is_err(), "field number 0 is invalid");
    }
}
