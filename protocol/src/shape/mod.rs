//! Schema-driven shape check of Kafka request and response bodies, run before decode.
//!
//! kafka-protocol 0.18 sizes every array with `Vec::with_capacity(count)` taken straight from
//! the wire, so a 20-byte request claiming 2^31 elements makes decode try to allocate hundreds
//! of gigabytes and abort the process. [`check`] walks a body exactly as Kafka lays it out for
//! the given API, kind and version — driven by `generated.rs`, a table generated from Kafka's
//! own message specs by `protocol/schema/generate.py` — and rejects the frame before the crate
//! sees it when a count or length cannot fit in the bytes that remain:
//!
//! - an array of `count` elements needs `count` × (the least bytes one element can take at this
//!   version, at least 1) bytes; Kafka's own reader checks only `count` ≤ remaining;
//! - a string, bytes or records length must not exceed the bytes that remain;
//! - an unsigned varint may take at most 5 bytes and must fit in 32 bits (message bodies have no
//!   signed varints or varlongs: those live inside record batches, which are opaque here);
//! - nesting is bounded by [`MAX_DEPTH`], so the recursion is too.
//!
//! The walk reads each byte at most once, allocates nothing unless it fails (then only the
//! error's field path), and never panics. [`ShapeStats::total_array_elements`] lets the caller
//! bound what decode will allocate for the arrays that did pass.
//!
//! Choices where the wire format leaves room:
//! - Null (length -1, or compact length 0) is accepted for a field that is nullable in *any*
//!   version, as kafka-protocol's decoder does (its Rust type is an `Option`), even though Kafka
//!   rejects a null outside `nullableVersions`; a null costs decode nothing.
//! - A nullable struct is preceded by a marker byte: -1 for null, 1 for present. Any other value
//!   is rejected: Kafka reads any negative as null, kafka-protocol anything but 1, so only these
//!   two mean the same thing to both.
//! - A known tagged field is walked inside its declared size and must fill it exactly, because
//!   kafka-protocol decodes it straight from the stream and ignores the size: a mismatch would
//!   make the decoder read bytes this walk treated as padding.
//! - Trailing bytes after the body are not an error. Kafka's broker hands the rest of the frame
//!   to the generated reader (`RequestContext.parseRequest`), which never checks what remains,
//!   and kafka-protocol's decode ignores them too. They are reported in
//!   [`ShapeStats::trailing_bytes`] for a caller that wants to be stricter.
//! - Versions outside the table's range are [`ShapeError::UnsupportedVersion`]. An
//!   ApiVersions request with an unknown version must be answered (KIP-511) before calling
//!   this, since its body cannot be walked.

use std::fmt;

mod generated;

/// The deepest nesting of structs and arrays a body may have; deeper input is rejected.
pub const MAX_DEPTH: usize = 16;

// Every body the table describes must be walkable within the bound.
const _: () = assert!(generated::MAX_SCHEMA_DEPTH <= MAX_DEPTH);

/// Whether a body is a request or a response; their schemas differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A client-to-broker request body.
    Request,
    /// A broker-to-client response body.
    Response,
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
        })
    }
}

/// What a successful walk saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShapeStats {
    /// The sum of the element counts of every (non-null) array in the body, nested ones
    /// included: decode allocates room for this many elements. Never more than
    /// `bytes_consumed`, since every array element takes at least one byte.
    pub total_array_elements: u64,
    /// The bytes the body's fields take.
    pub bytes_consumed: usize,
    /// The bytes after the body, which Kafka and kafka-protocol both ignore.
    pub trailing_bytes: usize,
    /// The tagged fields this table does not know, skipped by their size.
    pub unknown_tagged_fields: u64,
}

/// Why a body was rejected. `path` names the field, e.g. `topic_data[0].partition_data`
/// (`<tag N>` for an unknown tagged field, `body` for the top level).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// kafka-protocol 0.18 does not know this API key.
    #[error("unknown API key {api_key}")]
    UnknownApi {
        /// The key from the request header.
        api_key: i16,
    },
    /// The API exists but not at this version.
    #[error("{api} {kind} version {version} is not supported (valid: {min} to {max})")]
    UnsupportedVersion {
        /// The API's name, e.g. `Metadata`.
        api: &'static str,
        /// Request or response.
        kind: MessageKind,
        /// The version asked for.
        version: i16,
        /// The lowest valid version.
        min: i16,
        /// The highest valid version.
        max: i16,
    },
    /// The body ends inside a field.
    #[error("{path}: truncated, needs {needed} bytes but {remaining} remain")]
    Truncated {
        /// Where.
        path: String,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the body (or in the enclosing tagged field).
        remaining: usize,
    },
    /// An array's element count cannot fit in the bytes that remain.
    #[error("{path}: array of {count} elements needs at least {needed} bytes, {remaining} remain")]
    ArrayTooLong {
        /// Where.
        path: String,
        /// The count from the wire.
        count: u64,
        /// `count` × the least bytes one element takes.
        needed: u64,
        /// Bytes left.
        remaining: usize,
    },
    /// A string, bytes, records or tagged-field length exceeds the bytes that remain.
    #[error("{path}: length {length} exceeds the {remaining} bytes that remain")]
    LengthTooLong {
        /// Where.
        path: String,
        /// The length from the wire.
        length: u64,
        /// Bytes left.
        remaining: usize,
    },
    /// A negative length other than -1 (null).
    #[error("{path}: invalid length {length}")]
    InvalidLength {
        /// Where.
        path: String,
        /// The length from the wire.
        length: i32,
    },
    /// Null where the field is never nullable.
    #[error("{path}: null, but the field is not nullable")]
    UnexpectedNull {
        /// Where.
        path: String,
    },
    /// An unsigned varint longer than 5 bytes or above `u32::MAX`.
    #[error("{path}: unsigned varint longer than 5 bytes or above u32::MAX")]
    InvalidVarint {
        /// Where.
        path: String,
    },
    /// A nullable struct's marker byte is neither -1 (null) nor 1 (present).
    #[error("{path}: nullable struct marker {marker} is neither -1 nor 1")]
    InvalidStructMarker {
        /// Where.
        path: String,
        /// The marker from the wire.
        marker: i8,
    },
    /// A known tagged field's value does not take exactly its declared size.
    #[error("{path}: tagged field {tag} declares {declared} bytes but its value takes {used}")]
    TaggedFieldSize {
        /// Where.
        path: String,
        /// The field's tag.
        tag: u32,
        /// The size from the wire.
        declared: u64,
        /// The bytes the value took.
        used: u64,
    },
    /// More tagged fields than the remaining bytes can hold (each takes at least 2).
    #[error("{path}: {count} tagged fields cannot fit in the {remaining} bytes that remain")]
    TooManyTaggedFields {
        /// Where: the struct that owns the tagged fields.
        path: String,
        /// The count from the wire.
        count: u32,
        /// Bytes left.
        remaining: usize,
    },
    /// Structs and arrays nested deeper than [`MAX_DEPTH`].
    #[error("{path}: nested deeper than {max_depth} levels")]
    TooDeep {
        /// Where.
        path: String,
        /// [`MAX_DEPTH`].
        max_depth: usize,
    },
}

/// Walks `body` — a message body, after the request or response header — as Kafka lays out
/// `api_key` at `api_version`, and says whether kafka-protocol can decode it without being
/// tricked into allocating more than the body justifies. See the module documentation for the
/// rules.
pub fn check(
    kind: MessageKind,
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<ShapeStats, ShapeError> {
    let api = generated::APIS
        .iter()
        .find(|api| api.key == api_key)
        .ok_or(ShapeError::UnknownApi { api_key })?;
    let message = match kind {
        MessageKind::Request => &api.request,
        MessageKind::Response => &api.response,
    };
    if !message.valid.contains(api_version) {
        return Err(ShapeError::UnsupportedVersion {
            api: api.name,
            kind,
            version: api_version,
            min: message.valid.0,
            max: message.valid.1,
        });
    }
    walk_body(
        message.fields,
        api_version,
        message.flexible.contains(api_version),
        body,
    )
}

/// Walks `body` as a struct of `fields` at `version`.
fn walk_body(
    fields: &'static [Field],
    version: i16,
    flexible: bool,
    body: &[u8],
) -> Result<ShapeStats, ShapeError> {
    let mut walker = Walker {
        body,
        pos: 0,
        end: body.len(),
        version,
        flexible,
        stats: ShapeStats::default(),
        path: Path::default(),
    };
    walker.walk_struct(fields, 0)?;
    debug_assert!(walker.pos <= body.len());
    Ok(ShapeStats {
        bytes_consumed: walker.pos,
        trailing_bytes: body.len().saturating_sub(walker.pos),
        ..walker.stats
    })
}

// ---------------------------------------------------------------------------------------------
// The table's vocabulary (generated.rs is written in these terms).

/// An inclusive range of versions; empty when `.0 > .1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Versions(i16, i16);

/// The empty version range.
const NONE: Versions = Versions(0, -1);
/// The upper end of an open range such as `3+`.
const MAX: i16 = i16::MAX;

impl Versions {
    const fn contains(self, version: i16) -> bool {
        self.0 <= version && version <= self.1
    }

    const fn is_empty(self) -> bool {
        self.0 > self.1
    }
}

/// A field's wire type.
#[derive(Debug, Clone, Copy)]
enum Type {
    Int8,
    Int16,
    UInt16,
    Int32,
    // No message body in the current specs has one; kept so a regenerated table may.
    #[allow(dead_code)]
    UInt32,
    Int64,
    Float64,
    Bool,
    Uuid,
    String,
    Bytes,
    /// A record set: on the wire, nullable bytes.
    Records,
    /// Its fields in wire order; in a flexible version a tagged-field section follows them.
    Struct(&'static [Field]),
    /// Elements of the given type, which are never null.
    Array(&'static Type),
}

/// A tagged field's tag and the versions in which it is tagged.
#[derive(Debug, Clone, Copy)]
struct Tag {
    id: u32,
    versions: Versions,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    /// snake_case, as kafka-protocol names the field.
    name: &'static str,
    ty: Type,
    /// The versions in which the field exists, tagged or not.
    versions: Versions,
    /// The versions in which Kafka allows null. A string, bytes or array may be null if this
    /// is not empty (see the module documentation); a struct has a null marker in exactly
    /// these versions.
    nullable: Versions,
    tag: Option<Tag>,
}

impl Field {
    /// Present in the fixed part of the struct at `version`.
    fn is_fixed_at(&self, version: i16) -> bool {
        self.versions.contains(version) && !self.is_tagged_at(version)
    }

    fn is_tagged_at(&self, version: i16) -> bool {
        self.versions.contains(version)
            && self.tag.is_some_and(|tag| tag.versions.contains(version))
    }

    fn may_be_null(&self) -> bool {
        !self.nullable.is_empty()
    }
}

/// An untagged field.
const fn f(name: &'static str, ty: Type, versions: Versions, nullable: Versions) -> Field {
    Field {
        name,
        ty,
        versions,
        nullable,
        tag: None,
    }
}

/// A field that is tagged (`tag`) in `tagged` versions.
const fn tf(
    name: &'static str,
    ty: Type,
    versions: Versions,
    nullable: Versions,
    tag: u32,
    tagged: Versions,
) -> Field {
    Field {
        name,
        ty,
        versions,
        nullable,
        tag: Some(Tag {
            id: tag,
            versions: tagged,
        }),
    }
}

#[derive(Debug)]
struct Message {
    valid: Versions,
    flexible: Versions,
    fields: &'static [Field],
}

#[derive(Debug)]
struct Api {
    key: i16,
    name: &'static str,
    request: Message,
    response: Message,
}

// ---------------------------------------------------------------------------------------------
// The walk.

struct Walker<'a> {
    body: &'a [u8],
    pos: usize,
    /// Reads stop here: the body's end, or the end of the tagged field being walked.
    end: usize,
    version: i16,
    flexible: bool,
    stats: ShapeStats,
    path: Path,
}

/// How wide a non-flexible length prefix is.
#[derive(Clone, Copy)]
enum Width {
    /// Strings: int16.
    Short,
    /// Bytes, records and arrays: int32.
    Long,
}

impl Walker<'_> {
    fn walk_struct(&mut self, fields: &'static [Field], depth: usize) -> Result<(), ShapeError> {
        debug_assert!(self.pos <= self.end && self.end <= self.body.len());
        let version = self.version;
        for field in fields.iter().filter(|field| field.is_fixed_at(version)) {
            self.path.push(Frame::Field(field.name));
            self.walk_value(field, &field.ty, depth)?;
            self.path.pop();
        }
        if self.flexible {
            self.walk_tagged_fields(fields, depth)?;
        }
        Ok(())
    }

    /// Walks one value of type `ty`; `field` is the field it belongs to (for an array element,
    /// the array's field).
    fn walk_value(&mut self, field: &Field, ty: &Type, depth: usize) -> Result<(), ShapeError> {
        match ty {
            Type::Int8 | Type::Bool => self.skip_fixed(1),
            Type::Int16 | Type::UInt16 => self.skip_fixed(2),
            Type::Int32 | Type::UInt32 => self.skip_fixed(4),
            Type::Int64 | Type::Float64 => self.skip_fixed(8),
            Type::Uuid => self.skip_fixed(16),
            Type::String => self.walk_bytes(field, Width::Short),
            Type::Bytes | Type::Records => self.walk_bytes(field, Width::Long),
            Type::Struct(fields) => {
                let depth = self.deeper(depth)?;
                if field.nullable.contains(self.version) {
                    match self.read_i8()? {
                        -1 => return Ok(()),
                        1 => {}
                        marker => {
                            return Err(ShapeError::InvalidStructMarker {
                                path: self.path.render(),
                                marker,
                            })
                        }
                    }
                }
                self.walk_struct(fields, depth)
            }
            Type::Array(element) => self.walk_array(field, element, depth),
        }
    }

    fn walk_array(
        &mut self,
        field: &Field,
        element: &'static Type,
        depth: usize,
    ) -> Result<(), ShapeError> {
        let depth = self.deeper(depth)?;
        let Some(count) = self.read_length(Width::Long, field.may_be_null())? else {
            return Ok(());
        };
        let element_bytes = self.min_size(element, false, depth).max(1);
        let needed = count.saturating_mul(element_bytes);
        if needed > self.remaining() as u64 {
            return Err(ShapeError::ArrayTooLong {
                path: self.path.render(),
                count,
                needed,
                remaining: self.remaining(),
            });
        }
        self.stats.total_array_elements = self.stats.total_array_elements.saturating_add(count);
        for index in 0..count {
            self.path.set_index(index);
            // Array elements are never null: a nullable field makes the array nullable.
            let element_field = Field {
                nullable: NONE,
                ..*field
            };
            self.walk_value(&element_field, element, depth)?;
        }
        Ok(())
    }

    /// A string, bytes or records value: a length, then that many bytes.
    fn walk_bytes(&mut self, field: &Field, width: Width) -> Result<(), ShapeError> {
        match self.read_length(width, field.may_be_null())? {
            Some(length) if length > self.remaining() as u64 => Err(ShapeError::LengthTooLong {
                path: self.path.render(),
                length,
                remaining: self.remaining(),
            }),
            Some(length) => self.skip_fixed(length),
            None => Ok(()),
        }
    }

    /// The tagged-field section that ends every struct in a flexible version.
    fn walk_tagged_fields(
        &mut self,
        fields: &'static [Field],
        depth: usize,
    ) -> Result<(), ShapeError> {
        let count = self.read_uvarint()?;
        // Each tagged field takes at least two bytes: its tag and its size.
        if u64::from(count) * 2 > self.remaining() as u64 {
            return Err(ShapeError::TooManyTaggedFields {
                path: self.path.render(),
                count,
                remaining: self.remaining(),
            });
        }
        for _ in 0..count {
            let tag = self.read_uvarint()?;
            self.path.push(Frame::Tag(tag));
            let size = u64::from(self.read_uvarint()?);
            if size > self.remaining() as u64 {
                return Err(ShapeError::LengthTooLong {
                    path: self.path.render(),
                    length: size,
                    remaining: self.remaining(),
                });
            }
            self.path.pop();
            let version = self.version;
            let known = fields.iter().find(|field| {
                field.is_tagged_at(version) && field.tag.is_some_and(|t| t.id == tag)
            });
            match known {
                Some(field) => self.walk_known_tagged(field, tag, size, depth)?,
                None => {
                    self.skip_fixed(size)?;
                    self.stats.unknown_tagged_fields += 1;
                }
            }
        }
        Ok(())
    }

    /// Walks a known tagged field's value inside its `size` bytes, which it must fill.
    fn walk_known_tagged(
        &mut self,
        field: &Field,
        tag: u32,
        size: u64,
        depth: usize,
    ) -> Result<(), ShapeError> {
        let start = self.pos;
        let outer_end = self.end;
        // `size` <= remaining was checked, so this stays within `outer_end`.
        self.end = start.saturating_add(size as usize).min(outer_end);
        self.path.push(Frame::Field(field.name));
        self.walk_value(field, &field.ty, depth)?;
        let used = self.pos.saturating_sub(start) as u64;
        if used != size {
            return Err(ShapeError::TaggedFieldSize {
                path: self.path.render(),
                tag,
                declared: size,
                used,
            });
        }
        self.path.pop();
        self.end = outer_end;
        Ok(())
    }

    /// The fewest bytes a value of type `ty` can take at this version.
    fn min_size(&self, ty: &Type, nullable_struct: bool, depth: usize) -> u64 {
        match ty {
            Type::Int8 | Type::Bool => 1,
            Type::Int16 | Type::UInt16 => 2,
            Type::Int32 | Type::UInt32 => 4,
            Type::Int64 | Type::Float64 => 8,
            Type::Uuid => 16,
            Type::String => self.prefix_size(Width::Short),
            Type::Bytes | Type::Records | Type::Array(_) => self.prefix_size(Width::Long),
            // Only the null marker.
            Type::Struct(_) if nullable_struct => 1,
            // Underestimating only weakens the array check, so past the bound count nothing.
            Type::Struct(_) if depth >= MAX_DEPTH => 0,
            Type::Struct(fields) => {
                let fixed: u64 = fields
                    .iter()
                    .filter(|field| field.is_fixed_at(self.version))
                    .map(|field| {
                        let nullable = field.nullable.contains(self.version);
                        self.min_size(&field.ty, nullable, depth + 1)
                    })
                    .sum();
                // The tagged-field count (zero tagged fields) is one byte.
                fixed + u64::from(self.flexible)
            }
        }
    }

    fn prefix_size(&self, width: Width) -> u64 {
        match (self.flexible, width) {
            (true, _) => 1,
            (false, Width::Short) => 2,
            (false, Width::Long) => 4,
        }
    }

    /// One level deeper, or [`ShapeError::TooDeep`].
    fn deeper(&self, depth: usize) -> Result<usize, ShapeError> {
        if depth >= MAX_DEPTH {
            return Err(ShapeError::TooDeep {
                path: self.path.render(),
                max_depth: MAX_DEPTH,
            });
        }
        Ok(depth + 1)
    }

    // ---- reading

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ShapeError> {
        let bytes = self
            .body
            .get(self.pos..self.end)
            .and_then(|rest| rest.get(..N))
            .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
            .ok_or_else(|| self.truncated(N as u64))?;
        self.pos += N;
        Ok(bytes)
    }

    fn skip_fixed(&mut self, count: u64) -> Result<(), ShapeError> {
        if count > self.remaining() as u64 {
            return Err(self.truncated(count));
        }
        // count <= remaining, which is a usize.
        self.pos += count as usize;
        Ok(())
    }

    fn read_i8(&mut self) -> Result<i8, ShapeError> {
        Ok(i8::from_be_bytes(self.take::<1>()?))
    }

    /// A length prefix: `None` for null. Compact (flexible) lengths are an unsigned varint
    /// holding length + 1; classic ones an int16 or int32 where -1 means null.
    fn read_length(&mut self, width: Width, may_be_null: bool) -> Result<Option<u64>, ShapeError> {
        let length = if self.flexible {
            self.read_uvarint()?.checked_sub(1).map(u64::from)
        } else {
            let raw = match width {
                Width::Short => i32::from(i16::from_be_bytes(self.take::<2>()?)),
                Width::Long => i32::from_be_bytes(self.take::<4>()?),
            };
            match raw {
                -1 => None,
                _ if raw < -1 => {
                    return Err(ShapeError::InvalidLength {
                        path: self.path.render(),
                        length: raw,
                    })
                }
                _ => Some(raw.unsigned_abs().into()),
            }
        };
        if length.is_none() && !may_be_null {
            return Err(ShapeError::UnexpectedNull {
                path: self.path.render(),
            });
        }
        Ok(length)
    }

    /// An unsigned varint of at most 5 bytes whose value fits in 32 bits.
    fn read_uvarint(&mut self) -> Result<u32, ShapeError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let [byte] = self.take::<1>()?;
            let bits = u32::from(byte & 0x7f);
            // The fifth byte may carry only the top 4 bits and must end the varint.
            if index == 4 && (byte & 0x80 != 0 || bits > 0x0f) {
                return Err(ShapeError::InvalidVarint {
                    path: self.path.render(),
                });
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ShapeError::InvalidVarint {
            path: self.path.render(),
        })
    }

    fn truncated(&self, needed: u64) -> ShapeError {
        ShapeError::Truncated {
            path: self.path.render(),
            needed,
            remaining: self.remaining(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The field path, kept on the stack; it is rendered to a string only for an error.

#[derive(Debug, Clone, Copy)]
enum Frame {
    Field(&'static str),
    Element(&'static str, u64),
    Tag(u32),
}

/// Room for one frame per nesting level, plus the leaf field and a tag.
const PATH_CAPACITY: usize = MAX_DEPTH + 2;

struct Path {
    frames: [Frame; PATH_CAPACITY],
    /// May exceed `PATH_CAPACITY` (the extra frames are dropped, not stored), so that pushes
    /// and pops stay balanced whatever happens.
    len: usize,
}

impl Default for Path {
    fn default() -> Self {
        Path {
            frames: [Frame::Tag(0); PATH_CAPACITY],
            len: 0,
        }
    }
}

impl Path {
    fn push(&mut self, frame: Frame) {
        if let Some(slot) = self.frames.get_mut(self.len) {
            *slot = frame;
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Marks the innermost frame (an array field) as being at element `index`.
    fn set_index(&mut self, index: u64) {
        if let Some(slot) = self
            .len
            .checked_sub(1)
            .and_then(|top| self.frames.get_mut(top))
        {
            if let Frame::Field(name) | Frame::Element(name, _) = *slot {
                *slot = Frame::Element(name, index);
            }
        }
    }

    fn render(&self) -> String {
        let stored = &self.frames[..self.len.min(PATH_CAPACITY)];
        if stored.is_empty() {
            return "body".to_owned();
        }
        let mut out = String::new();
        for (position, frame) in stored.iter().enumerate() {
            if position > 0 {
                out.push('.');
            }
            match frame {
                Frame::Field(name) => out.push_str(name),
                Frame::Element(name, index) => out.push_str(&format!("{name}[{index}]")),
                Frame::Tag(tag) => out.push_str(&format!("<tag {tag}>")),
            }
        }
        if self.len > PATH_CAPACITY {
            out.push_str(".…");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCE: i16 = 0;
    const FETCH: i16 = 1;
    const METADATA: i16 = 3;
    const API_VERSIONS: i16 = 18;
    const CONSUMER_GROUP_HEARTBEAT: i16 = 68;

    /// Builds a body by hand, in Kafka's big-endian wire format.
    #[derive(Default)]
    struct Body(Vec<u8>);

    impl Body {
        fn i8(mut self, value: i8) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn i16(mut self, value: i16) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn i32(mut self, value: i32) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn raw(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn uvarint(mut self, mut value: u32) -> Self {
            while value >= 0x80 {
                self.0.push((value as u8) | 0x80);
                value >>= 7;
            }
            self.0.push(value as u8);
            self
        }
        /// A classic (int16-length) string.
        fn string(self, text: &str) -> Self {
            self.i16(text.len() as i16).raw(text.as_bytes())
        }
        /// A compact (flexible) string.
        fn compact_string(self, text: &str) -> Self {
            self.uvarint(text.len() as u32 + 1).raw(text.as_bytes())
        }
    }

    fn request(api_key: i16, version: i16, body: &[u8]) -> Result<ShapeStats, ShapeError> {
        check(MessageKind::Request, api_key, version, body)
    }

    fn path_of(error: &ShapeError) -> &str {
        match error {
            ShapeError::Truncated { path, .. }
            | ShapeError::ArrayTooLong { path, .. }
            | ShapeError::LengthTooLong { path, .. }
            | ShapeError::InvalidLength { path, .. }
            | ShapeError::UnexpectedNull { path }
            | ShapeError::InvalidVarint { path }
            | ShapeError::InvalidStructMarker { path, .. }
            | ShapeError::TaggedFieldSize { path, .. }
            | ShapeError::TooManyTaggedFields { path, .. }
            | ShapeError::TooDeep { path, .. } => path,
            ShapeError::UnknownApi { .. } | ShapeError::UnsupportedVersion { .. } => "",
        }
    }

    fn api_versions_v3() -> Body {
        Body::default()
            .compact_string("spate")
            .compact_string("0.1.0")
    }

    #[test]
    fn metadata_v1_with_a_huge_topic_count_is_rejected() {
        let body = Body::default().i32(i32::MAX);
        let error = request(METADATA, 1, &body.0).unwrap_err();
        // Each v1 topic is at least its int16 name length.
        assert_eq!(
            error,
            ShapeError::ArrayTooLong {
                path: "topics".to_owned(),
                count: i32::MAX as u64,
                needed: 2 * i32::MAX as u64,
                remaining: 0,
            }
        );
    }

    #[test]
    fn a_nested_huge_count_is_reported_with_its_path() {
        let body = Body::default()
            .i16(-1) // transactional_id: null
            .i16(1) // acks
            .i32(30_000) // timeout_ms
            .i32(1) // topic_data: one topic
            .string("t")
            .i32(i32::MAX) // partition_data
            .raw(&[0; 12]);
        let error = request(PRODUCE, 3, &body.0).unwrap_err();
        // A v3 partition takes at least an int32 index and an int32 records length.
        assert_eq!(
            error.to_string(),
            "topic_data[0].partition_data: array of 2147483647 elements needs at least \
             17179869176 bytes, 12 remain"
        );
    }

    #[test]
    fn a_well_formed_api_versions_v3_request_passes() {
        let body = api_versions_v3().uvarint(0);
        let stats = request(API_VERSIONS, 3, &body.0).unwrap();
        assert_eq!(stats.bytes_consumed, body.0.len());
        assert_eq!(stats.trailing_bytes, 0);
        assert_eq!(stats.total_array_elements, 0);
        assert_eq!(stats.unknown_tagged_fields, 0);
    }

    #[test]
    fn an_unknown_tagged_field_is_skipped() {
        let body = api_versions_v3()
            .uvarint(1)
            .uvarint(9)
            .uvarint(3)
            .raw(b"abc");
        let stats = request(API_VERSIONS, 3, &body.0).unwrap();
        assert_eq!(stats.bytes_consumed, body.0.len());
        assert_eq!(stats.unknown_tagged_fields, 1);

        let oversized = api_versions_v3()
            .uvarint(1)
            .uvarint(9)
            .uvarint(4)
            .raw(b"abc");
        let error = request(API_VERSIONS, 3, &oversized.0).unwrap_err();
        assert!(matches!(
            error,
            ShapeError::LengthTooLong {
                length: 4,
                remaining: 3,
                ..
            }
        ));
        assert_eq!(path_of(&error), "<tag 9>");
    }

    #[test]
    fn every_strict_prefix_of_a_body_is_rejected() {
        let body = api_versions_v3()
            .uvarint(1)
            .uvarint(9)
            .uvarint(3)
            .raw(b"abc");
        for len in 0..body.0.len() {
            assert!(
                request(API_VERSIONS, 3, &body.0[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let truncated = Body::default().i32(-1); // Metadata v4: topics null, no bool
        assert_eq!(
            request(METADATA, 4, &truncated.0).unwrap_err(),
            ShapeError::Truncated {
                path: "allow_auto_topic_creation".to_owned(),
                needed: 1,
                remaining: 0,
            }
        );
    }

    #[test]
    fn trailing_bytes_are_reported_not_rejected() {
        let body = Body::default().i32(0).raw(&[1, 2, 3]);
        let stats = request(METADATA, 1, &body.0).unwrap();
        assert_eq!((stats.bytes_consumed, stats.trailing_bytes), (4, 3));
    }

    #[test]
    fn unknown_apis_and_versions_are_rejected() {
        // LeaderAndIsr (4) was removed in Kafka 4.0; kafka-protocol 0.18 no longer has it.
        assert_eq!(
            request(4, 0, &[]).unwrap_err(),
            ShapeError::UnknownApi { api_key: 4 }
        );
        assert_eq!(
            request(-1, 0, &[]).unwrap_err(),
            ShapeError::UnknownApi { api_key: -1 }
        );
        let error = request(PRODUCE, 2, &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Produce request version 2 is not supported (valid: 3 to 13)"
        );
        assert!(matches!(
            request(PRODUCE, -1, &[]),
            Err(ShapeError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            check(MessageKind::Response, METADATA, 14, &[]),
            Err(ShapeError::UnsupportedVersion { max: 13, .. })
        ));
    }

    #[test]
    fn malformed_varints_are_rejected() {
        for bytes in [
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..],
            &[0xff, 0xff, 0xff, 0xff, 0x1f],
        ] {
            let error = request(API_VERSIONS, 3, bytes).unwrap_err();
            assert_eq!(
                error,
                ShapeError::InvalidVarint {
                    path: "client_software_name".to_owned()
                }
            );
        }
        // u32::MAX is a valid varint, but not a length that fits.
        let error = request(API_VERSIONS, 3, &[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
        assert!(matches!(
            error,
            ShapeError::LengthTooLong {
                length: 4_294_967_294,
                ..
            }
        ));
    }

    #[test]
    fn nulls_are_accepted_only_where_a_field_may_be_null() {
        // Metadata topics are nullable (from v1): null means "all topics".
        assert!(request(METADATA, 1, &Body::default().i32(-1).0).is_ok());
        // Produce topic_data never is.
        let body = Body::default().i16(-1).i16(1).i32(0).i32(-1);
        let error = request(PRODUCE, 3, &body.0).unwrap_err();
        assert_eq!(
            error,
            ShapeError::UnexpectedNull {
                path: "topic_data".to_owned()
            }
        );
        let body = Body::default().i16(-1).i16(1).i32(0).i32(-2);
        let error = request(PRODUCE, 3, &body.0).unwrap_err();
        assert!(matches!(
            error,
            ShapeError::InvalidLength { length: -2, .. }
        ));
    }

    #[test]
    fn nullable_structs_take_a_marker_byte() {
        let head = || {
            Body::default()
                .i32(0) // throttle_time_ms
                .i16(0) // error_code
                .uvarint(0) // error_message: null
                .compact_string("member")
                .i32(1) // member_epoch
                .i32(3000) // heartbeat_interval_ms
        };
        let respond =
            |body: Body| check(MessageKind::Response, CONSUMER_GROUP_HEARTBEAT, 0, &body.0);
        assert!(respond(head().i8(-1).uvarint(0)).is_ok());
        // Present: an empty topic_partitions array and no tagged fields.
        assert!(respond(head().i8(1).uvarint(1).uvarint(0).uvarint(0)).is_ok());
        assert_eq!(
            respond(head().i8(0).uvarint(0)).unwrap_err(),
            ShapeError::InvalidStructMarker {
                path: "assignment".to_owned(),
                marker: 0
            }
        );
    }

    /// A Fetch v12 request with no topics and `tagged` as its tagged-field section.
    fn fetch_v12(tagged: Body) -> Body {
        Body::default()
            .i32(-1) // replica_id
            .i32(500) // max_wait_ms
            .i32(1) // min_bytes
            .i32(1 << 20) // max_bytes
            .i8(0) // isolation_level
            .i32(0) // session_id
            .i32(-1) // session_epoch
            .uvarint(1) // topics: empty
            .uvarint(1) // forgotten_topics_data: empty
            .compact_string("") // rack_id
            .raw(&tagged.0)
    }

    #[test]
    fn known_tagged_fields_are_walked_within_their_size() {
        // cluster_id is tag 0: a compact string "c1" takes 3 bytes.
        let good = fetch_v12(
            Body::default()
                .uvarint(1)
                .uvarint(0)
                .uvarint(3)
                .compact_string("c1"),
        );
        let stats = request(FETCH, 12, &good.0).unwrap();
        assert_eq!(
            (stats.bytes_consumed, stats.unknown_tagged_fields),
            (good.0.len(), 0)
        );

        let padded = fetch_v12(
            Body::default()
                .uvarint(1)
                .uvarint(0)
                .uvarint(4)
                .compact_string("c1")
                .raw(&[0]),
        );
        assert_eq!(
            request(FETCH, 12, &padded.0).unwrap_err(),
            ShapeError::TaggedFieldSize {
                path: "cluster_id".to_owned(),
                tag: 0,
                declared: 4,
                used: 3,
            }
        );
        // A huge array inside a tagged field is bounded by the field's size, not the body's.
        let body = Body::default()
            .i32(0) // throttle_time_ms
            .i16(0) // error_code
            .i32(0) // session_id
            .uvarint(1) // responses: empty
            .uvarint(1) // one tagged field
            .uvarint(0) // node_endpoints
            .uvarint(5)
            .uvarint(i32::MAX as u32)
            .raw(&[0; 32]);
        let error = check(MessageKind::Response, FETCH, 16, &body.0).unwrap_err();
        assert!(
            matches!(error, ShapeError::ArrayTooLong { remaining: 0, .. }),
            "{error}"
        );
        assert_eq!(path_of(&error), "node_endpoints");
    }

    #[test]
    fn too_many_tagged_fields_are_rejected_up_front() {
        let body = api_versions_v3().uvarint(u32::MAX);
        let error = request(API_VERSIONS, 3, &body.0).unwrap_err();
        assert!(matches!(
            error,
            ShapeError::TooManyTaggedFields {
                count: u32::MAX,
                ..
            }
        ));
        assert_eq!(path_of(&error), "body");
    }

    // A schema that nests forever: only the depth bound stops the walk.
    static ENDLESS: [Field; 1] = [f("inner", Type::Struct(&ENDLESS), Versions(0, MAX), NONE)];
    static ENDLESS_ARRAY: Type = Type::Array(&ENDLESS_ARRAY);
    static ENDLESS_ARRAYS: [Field; 1] = [f("nested", ENDLESS_ARRAY, Versions(0, MAX), NONE)];

    #[test]
    fn nesting_is_bounded() {
        let error = walk_body(&ENDLESS, 0, false, &[0; 64]).unwrap_err();
        assert!(
            matches!(
                error,
                ShapeError::TooDeep {
                    max_depth: MAX_DEPTH,
                    ..
                }
            ),
            "{error}"
        );
        // MAX_DEPTH structs were entered; the path ends at the field that would go one deeper.
        assert_eq!(path_of(&error).matches("inner").count(), MAX_DEPTH + 1);
        // Arrays of one array of one array ...
        let ones: Vec<u8> = [0, 0, 0, 1].repeat(64);
        let error = walk_body(&ENDLESS_ARRAYS, 0, false, &ones).unwrap_err();
        assert!(matches!(error, ShapeError::TooDeep { .. }), "{error}");
    }

    // ---- Every API, kind and version, from bodies encoded off the table.

    #[derive(Clone, Copy, PartialEq)]
    enum Fill {
        /// Empty arrays and strings, null nullable structs, no tagged fields.
        Minimal,
        /// Two elements per array, short strings, present structs, every known tagged field
        /// and one unknown one.
        Rich,
        /// Null wherever a field may be null.
        Nulls,
        /// Random values, lengths (0 to 3 elements), nulls and tagged fields, from a seed.
        Random,
    }

    struct Encoder {
        out: Vec<u8>,
        version: i16,
        flexible: bool,
        fill: Fill,
        array_elements: u64,
        rng: u64,
    }

    impl Encoder {
        fn new(version: i16, flexible: bool, fill: Fill) -> Self {
            Encoder {
                out: Vec::new(),
                version,
                flexible,
                fill,
                array_elements: 0,
                rng: 0x9e37_79b9_7f4a_7c15,
            }
        }

        fn seeded(version: i16, flexible: bool, seed: u64) -> Self {
            let mut encoder = Encoder::new(version, flexible, Fill::Random);
            encoder.rng ^= seed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            encoder
        }

        /// xorshift64*: deterministic per seed, no dependency.
        fn next(&mut self) -> u64 {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// True one time in `n` under `Fill::Random`, never otherwise.
        fn one_in(&mut self, n: u64) -> bool {
            self.fill == Fill::Random && self.next() % n == 0
        }

        fn random_bytes(&mut self, len: usize) {
            for _ in 0..len {
                let byte = self.next() as u8;
                self.out.push(byte);
            }
        }

        fn uvarint(&mut self, value: u32) {
            self.out = Body(std::mem::take(&mut self.out)).uvarint(value).0;
        }

        fn length(&mut self, length: Option<usize>, width: Width) {
            match (self.flexible, length, width) {
                (true, None, _) => self.uvarint(0),
                (true, Some(n), _) => self.uvarint(n as u32 + 1),
                (false, None, Width::Short) => self.out.extend_from_slice(&(-1i16).to_be_bytes()),
                (false, Some(n), Width::Short) => {
                    self.out.extend_from_slice(&(n as i16).to_be_bytes())
                }
                (false, None, Width::Long) => self.out.extend_from_slice(&(-1i32).to_be_bytes()),
                (false, Some(n), Width::Long) => {
                    self.out.extend_from_slice(&(n as i32).to_be_bytes())
                }
            }
        }

        fn struct_(&mut self, fields: &[Field]) {
            let version = self.version;
            for field in fields.iter().filter(|field| field.is_fixed_at(version)) {
                self.value(field, &field.ty);
            }
            if !self.flexible {
                return;
            }
            let known: Vec<&Field> = match self.fill {
                Fill::Rich => fields
                    .iter()
                    .filter(|field| field.is_tagged_at(version))
                    .collect(),
                Fill::Random => fields
                    .iter()
                    .filter(|field| field.is_tagged_at(version))
                    .filter(|_| self.next() % 2 == 0)
                    .collect(),
                _ => Vec::new(),
            };
            let unknown = u32::from(self.fill == Fill::Rich || self.one_in(2));
            self.uvarint(known.len() as u32 + unknown);
            for field in known {
                let mut inner = Encoder::new(self.version, self.flexible, self.fill);
                inner.rng = self.next() | 1;
                inner.value(field, &field.ty);
                self.array_elements += inner.array_elements;
                self.uvarint(field.tag.map_or(0, |tag| tag.id));
                self.uvarint(inner.out.len() as u32);
                self.out.extend_from_slice(&inner.out);
            }
            if unknown == 1 {
                // Tags are never this large in the specs.
                self.uvarint(10_000);
                self.uvarint(2);
                self.out.extend_from_slice(&[0xde, 0xad]);
            }
        }

        fn value(&mut self, field: &Field, ty: &Type) {
            let null = field.may_be_null() && (self.fill == Fill::Nulls || self.one_in(4));
            let random = self.fill == Fill::Random;
            match ty {
                Type::Bool if random => {
                    let bit = (self.next() & 1) as u8;
                    self.out.push(bit);
                }
                Type::Int8 | Type::Bool => self.out.push(1),
                Type::Int16 | Type::UInt16 if random => self.random_bytes(2),
                Type::Int32 | Type::UInt32 if random => self.random_bytes(4),
                // Random float bits include NaNs, which compare unequal to themselves.
                Type::Int64 | Type::Float64 if random => self.random_bytes(8),
                Type::Uuid if random => self.random_bytes(16),
                Type::Int16 | Type::UInt16 => self.out.extend_from_slice(&[0; 2]),
                Type::Int32 | Type::UInt32 => self.out.extend_from_slice(&[0; 4]),
                Type::Int64 | Type::Float64 => self.out.extend_from_slice(&[0; 8]),
                Type::Uuid => self.out.extend_from_slice(&[7; 16]),
                Type::String | Type::Bytes | Type::Records => {
                    let width = if matches!(ty, Type::String) {
                        Width::Short
                    } else {
                        Width::Long
                    };
                    let text: Vec<u8> = match self.fill {
                        Fill::Rich => b"ab".to_vec(),
                        Fill::Random => {
                            let len = (self.next() % 5) as usize;
                            (0..len).map(|_| b'a' + (self.next() % 26) as u8).collect()
                        }
                        _ => Vec::new(),
                    };
                    self.length((!null).then_some(text.len()), width);
                    if !null {
                        self.out.extend_from_slice(&text);
                    }
                }
                Type::Struct(fields) => {
                    if field.nullable.contains(self.version) {
                        let present = match self.fill {
                            Fill::Rich => true,
                            Fill::Random => !self.one_in(3),
                            _ => false,
                        };
                        if !present {
                            self.out.push(0xff);
                            return;
                        }
                        self.out.push(1);
                    }
                    self.struct_(fields);
                }
                Type::Array(element) => {
                    let count = match self.fill {
                        Fill::Rich => 2,
                        Fill::Random => (self.next() % 4) as usize,
                        _ => 0,
                    };
                    self.length((!null).then_some(count), Width::Long);
                    if !null {
                        self.array_elements += count as u64;
                        let element_field = Field {
                            nullable: NONE,
                            ..*field
                        };
                        for _ in 0..count {
                            self.value(&element_field, element);
                        }
                    }
                }
            }
        }
    }

    fn every_message() -> impl Iterator<Item = (MessageKind, &'static Api, &'static Message, i16)> {
        generated::APIS.iter().flat_map(|api| {
            [
                (MessageKind::Request, &api.request),
                (MessageKind::Response, &api.response),
            ]
            .into_iter()
            .flat_map(move |(kind, message)| {
                (message.valid.0..=message.valid.1)
                    .map(move |version| (kind, api, message, version))
            })
        })
    }

    #[test]
    fn every_message_version_accepts_its_encodings_and_rejects_their_prefixes() {
        let mut checked = 0;
        for (kind, api, message, version) in every_message() {
            let flexible = message.flexible.contains(version);
            for fill in [Fill::Minimal, Fill::Rich, Fill::Nulls] {
                let mut encoder = Encoder::new(version, flexible, fill);
                encoder.struct_(message.fields);
                let body = encoder.out;
                let what = format!("{} {kind} v{version}", api.name);
                let stats = check(kind, api.key, version, &body)
                    .unwrap_or_else(|error| panic!("{what}: {error}"));
                assert_eq!(stats.bytes_consumed, body.len(), "{what}");
                assert_eq!(stats.total_array_elements, encoder.array_elements, "{what}");
                assert_eq!(
                    stats.unknown_tagged_fields > 0,
                    fill == Fill::Rich && flexible,
                    "{what}"
                );
                // The bodies are exact, so any cut leaves a field short.
                let step = (body.len() / 64).max(1);
                for len in (0..body.len()).step_by(step) {
                    assert!(
                        check(kind, api.key, version, &body[..len]).is_err(),
                        "{what}: {len}"
                    );
                }
                if fill == Fill::Minimal {
                    let walker = Walker {
                        body: &[],
                        pos: 0,
                        end: 0,
                        version,
                        flexible,
                        stats: ShapeStats::default(),
                        path: Path::default(),
                    };
                    let fields = Type::Struct(message.fields);
                    assert_eq!(
                        walker.min_size(&fields, false, 0),
                        body.len() as u64,
                        "{what}"
                    );
                }
                checked += 1;
            }
        }
        // 87 APIs, most with many versions.
        assert!(checked > 1500, "{checked}");
    }

    /// The round-trip property for every API key, kind and version: bodies built from the
    /// table (fixed fills and seeded random ones) decode with kafka-protocol, re-encode to
    /// bytes this check accepts in full, and re-encoding is a fixed point. Fills without
    /// tagged fields re-encode to exactly the original bytes.
    #[test]
    fn every_message_version_round_trips_through_kafka_protocol() {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

        fn decode_encode(
            kind: MessageKind,
            api: ApiKey,
            version: i16,
            body: &[u8],
        ) -> Result<Vec<u8>, String> {
            let mut input = Bytes::copy_from_slice(body);
            let mut out = BytesMut::new();
            match kind {
                MessageKind::Request => RequestKind::decode(api, &mut input, version)
                    .and_then(|value| value.encode(&mut out, version)),
                MessageKind::Response => ResponseKind::decode(api, &mut input, version)
                    .and_then(|value| value.encode(&mut out, version)),
            }
            .map_err(|e| format!("{e:#}"))?;
            Ok(out.to_vec())
        }

        const SEEDS: u64 = 32;
        let mut checked = 0;
        for (kind, api, message, version) in every_message() {
            let api_key = ApiKey::try_from(api.key).expect("table keys are kafka-protocol keys");
            let flexible = message.flexible.contains(version);
            let mut encoders = vec![
                Encoder::new(version, flexible, Fill::Minimal),
                Encoder::new(version, flexible, Fill::Rich),
                Encoder::new(version, flexible, Fill::Nulls),
            ];
            encoders.extend((0..SEEDS).map(|seed| Encoder::seeded(version, flexible, seed)));
            for mut encoder in encoders {
                let fill = encoder.fill;
                encoder.struct_(message.fields);
                let body = encoder.out;
                let what = format!("{} {kind} v{version} ({} bytes)", api.name, body.len());
                check(kind, api.key, version, &body).unwrap_or_else(|e| panic!("{what}: {e}"));
                let first = decode_encode(kind, api_key, version, &body)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let stats = check(kind, api.key, version, &first)
                    .unwrap_or_else(|e| panic!("{what}: re-encoding rejected: {e}"));
                assert_eq!(stats.bytes_consumed, first.len(), "{what}");
                let second = decode_encode(kind, api_key, version, &first)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(first, second, "{what}: re-encoding is not a fixed point");
                if matches!(fill, Fill::Minimal | Fill::Nulls) {
                    assert_eq!(first, body, "{what}: re-encoding changed the bytes");
                }
                checked += 1;
            }
        }
        assert!(checked > 20_000, "{checked}");
    }

    /// Every array element in the table takes at least one byte at every version, so
    /// `total_array_elements` never exceeds the body's length.
    #[test]
    fn every_array_element_takes_at_least_one_byte() {
        fn visit(walker: &Walker<'_>, fields: &'static [Field], depth: usize, what: &str) {
            for field in fields
                .iter()
                .filter(|field| field.versions.contains(walker.version))
            {
                match field.ty {
                    Type::Array(element) => {
                        assert!(
                            walker.min_size(element, false, depth) >= 1,
                            "{what}.{}",
                            field.name
                        );
                        if let Type::Struct(inner) = element {
                            visit(walker, inner, depth + 2, what);
                        }
                    }
                    Type::Struct(inner) => visit(walker, inner, depth + 1, what),
                    _ => {}
                }
            }
        }
        for (kind, api, message, version) in every_message() {
            let walker = Walker {
                body: &[],
                pos: 0,
                end: 0,
                version,
                flexible: message.flexible.contains(version),
                stats: ShapeStats::default(),
                path: Path::default(),
            };
            visit(
                &walker,
                message.fields,
                0,
                &format!("{} {kind} v{version}", api.name),
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // xorshift64: deterministic, so a failure names its case.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut body = Vec::new();
        for (kind, api, message, version) in every_message() {
            let flexible = message.flexible.contains(version);
            let mut encoder = Encoder::new(version, flexible, Fill::Rich);
            encoder.struct_(message.fields);
            for case in 0..24 {
                body.clear();
                if case % 2 == 0 {
                    let len = (next() % 48) as usize;
                    body.extend((0..len).map(|_| next() as u8));
                } else {
                    // A valid body with a few bytes changed.
                    body.extend_from_slice(&encoder.out);
                    for _ in 0..3 {
                        if let Some(byte) = body.get_mut(next() as usize % encoder.out.len().max(1))
                        {
                            *byte = next() as u8;
                        }
                    }
                }
                if let Ok(stats) = check(kind, api.key, version, &body) {
                    assert_eq!(stats.bytes_consumed + stats.trailing_bytes, body.len());
                    assert!(stats.total_array_elements <= body.len() as u64);
                }
            }
        }
    }
}
