//! Arrow types as PostgreSQL types: the OID a column is described with, its
//! values in text and binary format, and parameters read back into Arrow
//! values. Text follows PostgreSQL's output (`t`/`f`, ISO dates,
//! `2026-05-01 08:00:00+00` for `timestamptz` in UTC, `NaN`, `Infinity`);
//! binary follows its `send` functions (big-endian, days and microseconds
//! since 2000-01-01, `numeric` in base-10000 digits).

use chrono::{DateTime, NaiveDate};
use warehouse::datafusion::arrow::array::{Array, ArrayRef, AsArray as _};
use warehouse::datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use warehouse::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use warehouse::datafusion::common::ScalarValue;

/// Type OIDs (`pg_type.oid`).
pub mod oid {
    /// `bool`
    pub const BOOL: u32 = 16;
    /// `bytea`
    pub const BYTEA: u32 = 17;
    /// `name`
    pub const NAME: u32 = 19;
    /// `int8`
    pub const INT8: u32 = 20;
    /// `int2`
    pub const INT2: u32 = 21;
    /// `int4`
    pub const INT4: u32 = 23;
    /// `text`
    pub const TEXT: u32 = 25;
    /// `oid`
    pub const OID: u32 = 26;
    /// `float4`
    pub const FLOAT4: u32 = 700;
    /// `float8`
    pub const FLOAT8: u32 = 701;
    /// `bpchar`
    pub const BPCHAR: u32 = 1042;
    /// `varchar`
    pub const VARCHAR: u32 = 1043;
    /// `date`
    pub const DATE: u32 = 1082;
    /// `time`
    pub const TIME: u32 = 1083;
    /// `timestamp`
    pub const TIMESTAMP: u32 = 1114;
    /// `timestamptz`
    pub const TIMESTAMPTZ: u32 = 1184;
    /// `numeric`
    pub const NUMERIC: u32 = 1700;
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How a column goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `bool`
    Bool,
    /// `int2`
    Int2,
    /// `int4`
    Int4,
    /// `int8`
    Int8,
    /// `float4`
    Float4,
    /// `float8`
    Float8,
    /// `numeric` (decimals, and unsigned 64-bit integers)
    Numeric,
    /// `text` (strings, and anything without a closer type, as Arrow prints it)
    Text,
    /// `date`
    Date,
    /// `timestamp`
    Timestamp,
    /// `timestamptz`
    TimestampTz,
    /// `bytea`
    Bytea,
}

impl Kind {
    /// The kind of an Arrow type.
    pub fn of(data_type: &DataType) -> Kind {
        match data_type {
            DataType::Boolean => Kind::Bool,
            DataType::Int8 | DataType::UInt8 | DataType::Int16 => Kind::Int2,
            DataType::UInt16 | DataType::Int32 => Kind::Int4,
            DataType::UInt32 | DataType::Int64 => Kind::Int8,
            DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Kind::Numeric,
            DataType::Float16 | DataType::Float32 => Kind::Float4,
            DataType::Float64 => Kind::Float8,
            DataType::Date32 | DataType::Date64 => Kind::Date,
            DataType::Timestamp(_, None) => Kind::Timestamp,
            DataType::Timestamp(_, Some(_)) => Kind::TimestampTz,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                Kind::Bytea
            }
            DataType::Dictionary(_, value) => Kind::of(value),
            _ => Kind::Text,
        }
    }

    /// Its type OID.
    pub fn oid(self) -> u32 {
        match self {
            Kind::Bool => oid::BOOL,
            Kind::Int2 => oid::INT2,
            Kind::Int4 => oid::INT4,
            Kind::Int8 => oid::INT8,
            Kind::Float4 => oid::FLOAT4,
            Kind::Float8 => oid::FLOAT8,
            Kind::Numeric => oid::NUMERIC,
            Kind::Text => oid::TEXT,
            Kind::Date => oid::DATE,
            Kind::Timestamp => oid::TIMESTAMP,
            Kind::TimestampTz => oid::TIMESTAMPTZ,
            Kind::Bytea => oid::BYTEA,
        }
    }

    /// Its size (`typlen`; -1 variable).
    pub fn type_len(self) -> i16 {
        match self {
            Kind::Bool => 1,
            Kind::Int2 => 2,
            Kind::Int4 | Kind::Float4 | Kind::Date => 4,
            Kind::Int8 | Kind::Float8 | Kind::Timestamp | Kind::TimestampTz => 8,
            Kind::Numeric | Kind::Text | Kind::Bytea => -1,
        }
    }

    /// The Arrow type values of this kind are cast to before they are written.
    fn canonical(self, from: &DataType) -> DataType {
        match self {
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Kind::Bytea => DataType::Binary,
            Kind::Text => match from {
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => from.clone(),
                _ => DataType::Utf8,
            },
            Kind::Bool | Kind::Float8 | Kind::Numeric => from.clone(),
        }
    }
}

/// The Arrow type a parameter declared with `oid` is read as (`None`: unknown, let the query decide).
pub fn param_type(type_oid: u32) -> Option<DataType> {
    Some(match type_oid {
        oid::BOOL => DataType::Boolean,
        oid::INT2 => DataType::Int16,
        oid::INT4 => DataType::Int32,
        oid::INT8 | oid::OID => DataType::Int64,
        oid::FLOAT4 => DataType::Float32,
        oid::FLOAT8 | oid::NUMERIC => DataType::Float64,
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => DataType::Utf8,
        oid::DATE => DataType::Date32,
        oid::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        oid::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        _ => return None,
    })
}

/// Why a parameter could not be read.
#[derive(Debug, thiserror::Error)]
#[error("parameter ${index}: {reason}")]
pub struct ParamError {
    /// 1-based.
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

/// Reads parameter `index` (1-based) as `target`: `raw` in text (`binary`
/// false) or in binary format as the client declared it (`declared` OID).
pub fn read_param(
    index: usize,
    raw: Option<&[u8]>,
    binary: bool,
    declared: u32,
    target: &DataType,
) -> Result<ScalarValue, ParamError> {
    let fail = |reason: String| ParamError { index, reason };
    let Some(raw) = raw else {
        return ScalarValue::try_from(target).map_err(|e| fail(e.to_string()));
    };
    let value = if binary {
        let be8 = |raw: &[u8]| -> Result<[u8; 8], ParamError> {
            raw.try_into().map_err(|_| fail(format!("{} bytes where 8 were expected", raw.len())))
        };
        let be4 = |raw: &[u8]| -> Result<[u8; 4], ParamError> {
            raw.try_into().map_err(|_| fail(format!("{} bytes where 4 were expected", raw.len())))
        };
        match declared {
            oid::BOOL => ScalarValue::Boolean(Some(raw.first().is_some_and(|b| *b != 0))),
            oid::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(
                raw.try_into().map_err(|_| fail("int2 needs 2 bytes".into()))?,
            ))),
            oid::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(be4(raw)?))),
            oid::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(be8(raw)?))),
            oid::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(be4(raw)?))),
            oid::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(be8(raw)?))),
            oid::OID => ScalarValue::Int64(Some(i64::from(u32::from_be_bytes(be4(raw)?)))),
            oid::NUMERIC => ScalarValue::Utf8(Some(numeric_text(raw).map_err(fail)?)),
            oid::DATE => ScalarValue::Date32(Some(
                i32::from_be_bytes(be4(raw)?)
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or_else(|| fail("a date out of range".into()))?,
            )),
            oid::TIMESTAMP | oid::TIMESTAMPTZ => {
                let micros = i64::from_be_bytes(be8(raw)?)
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or_else(|| fail("a timestamp out of range".into()))?;
                let zone = (declared == oid::TIMESTAMPTZ).then(|| "+00:00".into());
                ScalarValue::TimestampMicrosecond(Some(micros), zone)
            }
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | 0 => ScalarValue::Utf8(Some(
                String::from_utf8(raw.to_vec()).map_err(|_| fail("text that is not UTF-8".into()))?,
            )),
            other => return Err(fail(format!("binary values of type OID {other} are not read; send text"))),
        }
    } else {
        let text = std::str::from_utf8(raw).map_err(|_| fail("text that is not UTF-8".into()))?;
        let text = match target {
            DataType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "yes" | "on" | "1" | "y" => "true".to_owned(),
                "f" | "false" | "no" | "off" | "0" | "n" => "false".to_owned(),
                other => return Err(fail(format!("{other:?} is not a boolean"))),
            },
            _ => text.to_owned(),
        };
        return ScalarValue::try_from_string(text.clone(), target)
            .map_err(|e| fail(format!("{text:?} is not a {target}: {e}")));
    };
    if &value.data_type() == target {
        Ok(value)
    } else {
        value.cast_to(target).map_err(|e| fail(format!("cannot be read as {target}: {e}")))
    }
}

/// A binary NUMERIC (sign, weight, scale and base-10000 digits, as PostgreSQL
/// sends it) as decimal text, exactly.
fn numeric_text(raw: &[u8]) -> Result<String, String> {
    let short = || format!("a binary numeric of {} bytes is cut short", raw.len());
    let word = |at: usize| -> Result<u16, String> {
        raw.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(short)
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        other => return Err(format!("a binary numeric with sign word {other:#06x}")),
    }
    if ndigits > 1000 || dscale > 1000 || weight.abs() > 1000 {
        return Err("a binary numeric larger than this server reads".into());
    }
    let digits = (0..ndigits).map(|i| word(8 + 2 * i)).collect::<Result<Vec<u16>, _>>()?;
    if digits.iter().any(|d| *d > 9999) {
        return Err("a binary numeric with a digit over 9999".into());
    }
    // Digit i stands for digits[i] * 10000^(weight - i).
    let digit = |position: i64| -> u16 {
        usize::try_from(weight - position).ok().and_then(|i| digits.get(i).copied()).unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for position in (0..=weight).rev() {
            let d = digit(position);
            if text.trim_start_matches('-').is_empty() {
                text.push_str(&d.to_string());
            } else {
                text.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut position = -1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(position)));
            position -= 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

/// A batch's column ready to be written: cast to its kind's Arrow type.
#[derive(Debug)]
pub struct Column {
    kind: Kind,
    array: ArrayRef,
}

/// Why a column could not be prepared.
pub type CastError = warehouse::datafusion::arrow::error::ArrowError;

impl Column {
    /// Prepares `array` to be written as `kind`.
    pub fn new(array: &ArrayRef, kind: Kind) -> Result<Column, CastError> {
        let target = kind.canonical(array.data_type());
        let array = if array.data_type() == &target {
            array.clone()
        } else {
            warehouse::datafusion::arrow::compute::cast(array, &target)?
        };
        Ok(Column { kind, array })
    }

    /// Whether row `i` is NULL.
    pub fn is_null(&self, i: usize) -> bool {
        self.array.is_null(i)
    }

    /// Writes row `i` (not NULL) in text or binary format.
    pub fn write(&self, i: usize, binary: bool, out: &mut Vec<u8>) {
        let a = &self.array;
        match (self.kind, binary) {
            (Kind::Bool, false) => out.push(if a.as_boolean().value(i) { b't' } else { b'f' }),
            (Kind::Bool, true) => out.push(u8::from(a.as_boolean().value(i))),
            (Kind::Int2, false) => out.extend_from_slice(a.as_primitive::<Int16Type>().value(i).to_string().as_bytes()),
            (Kind::Int2, true) => out.extend_from_slice(&a.as_primitive::<Int16Type>().value(i).to_be_bytes()),
            (Kind::Int4, false) => out.extend_from_slice(a.as_primitive::<Int32Type>().value(i).to_string().as_bytes()),
            (Kind::Int4, true) => out.extend_from_slice(&a.as_primitive::<Int32Type>().value(i).to_be_bytes()),
            (Kind::Int8, false) => out.extend_from_slice(a.as_primitive::<Int64Type>().value(i).to_string().as_bytes()),
            (Kind::Int8, true) => out.extend_from_slice(&a.as_primitive::<Int64Type>().value(i).to_be_bytes()),
            (Kind::Float4, false) => float_text(f64::from(a.as_primitive::<Float32Type>().value(i)), out),
            (Kind::Float4, true) => out.extend_from_slice(&a.as_primitive::<Float32Type>().value(i).to_be_bytes()),
            (Kind::Float8, false) => float_text(a.as_primitive::<Float64Type>().value(i), out),
            (Kind::Float8, true) => out.extend_from_slice(&a.as_primitive::<Float64Type>().value(i).to_be_bytes()),
            (Kind::Date, false) => {
                let days = a.as_primitive::<Date32Type>().value(i);
                match NaiveDate::from_num_days_from_ce_opt(days + 719_163) {
                    Some(d) => out.extend_from_slice(d.format("%Y-%m-%d").to_string().as_bytes()),
                    None => out.extend_from_slice(days.to_string().as_bytes()),
                }
            }
            (Kind::Date, true) => {
                out.extend_from_slice(&(a.as_primitive::<Date32Type>().value(i) - PG_EPOCH_DAYS).to_be_bytes());
            }
            (Kind::Timestamp | Kind::TimestampTz, false) => {
                let micros = a.as_primitive::<TimestampMicrosecondType>().value(i);
                timestamp_text(micros, self.kind == Kind::TimestampTz, out);
            }
            (Kind::Timestamp | Kind::TimestampTz, true) => {
                let micros = a.as_primitive::<TimestampMicrosecondType>().value(i);
                out.extend_from_slice(&(micros - PG_EPOCH_MICROS).to_be_bytes());
            }
            (Kind::Bytea, false) => {
                out.extend_from_slice(b"\\x");
                for b in a.as_binary::<i32>().value(i) {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
            }
            (Kind::Bytea, true) => out.extend_from_slice(a.as_binary::<i32>().value(i)),
            (Kind::Text, _) => match a.data_type() {
                DataType::Utf8View => out.extend_from_slice(a.as_string_view().value(i).as_bytes()),
                DataType::LargeUtf8 => out.extend_from_slice(a.as_string::<i64>().value(i).as_bytes()),
                _ => out.extend_from_slice(a.as_string::<i32>().value(i).as_bytes()),
            },
            (Kind::Numeric, binary) => {
                let options = FormatOptions::default();
                let text =
                    ArrayFormatter::try_new(a.as_ref(), &options).map(|f| f.value(i).to_string()).unwrap_or_default();
                if binary {
                    numeric_binary(&text, out);
                } else {
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
    }
}

fn float_text(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        // Rust prints the shortest text that reads back the same (PostgreSQL 12+ does too).
        out.extend_from_slice(v.to_string().as_bytes());
    }
}

fn timestamp_text(micros: i64, with_zone: bool, out: &mut Vec<u8>) {
    let Some(t) = DateTime::from_timestamp_micros(micros) else {
        out.extend_from_slice(micros.to_string().as_bytes());
        return;
    };
    let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    if with_zone {
        text.push_str("+00");
    }
    out.extend_from_slice(text.as_bytes());
}

/// A decimal's text as PostgreSQL's binary `numeric`: digit count, weight,
/// sign, display scale, then base-10000 digits.
pub fn numeric_binary(text: &str, out: &mut Vec<u8>) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        // NaN
        out.extend_from_slice(&[0, 0, 0, 0, 0xC0, 0, 0, 0]);
        return;
    }
    let dscale = frac_part.len() as i16;
    // Pad the integer part on the left and the fraction on the right to groups of four.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let digits_text: String = "0".repeat(int_pad) + int_part + frac_part + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> = digits_text
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = ((int_part.len() + int_pad) / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() { 0x4000 } else { 0 };
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use warehouse::datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, StringViewArray, TimestampMicrosecondArray,
    };

    use super::*;

    fn text(array: ArrayRef, i: usize) -> String {
        let column = Column::new(&array, Kind::of(array.data_type())).expect("cast");
        let mut out = Vec::new();
        column.write(i, false, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn values_print_as_postgresql_prints_them() {
        assert_eq!(text(Arc::new(BooleanArray::from(vec![true, false])), 1), "f");
        assert_eq!(text(Arc::new(Date32Array::from(vec![20_454])), 0), "2026-01-01");
        let ts =
            TimestampMicrosecondArray::from(vec![1_767_225_600_000_000, 1_767_225_600_250_000]).with_timezone("UTC");
        assert_eq!(text(Arc::new(ts.clone()), 0), "2026-01-01 00:00:00+00");
        assert_eq!(text(Arc::new(ts), 1), "2026-01-01 00:00:00.25+00");
        assert_eq!(text(Arc::new(Float64Array::from(vec![0.1, f64::NAN])), 0), "0.1");
        assert_eq!(text(Arc::new(Float64Array::from(vec![0.1, f64::NAN])), 1), "NaN");
        assert_eq!(text(Arc::new(StringViewArray::from(vec!["不动产"])), 0), "不动产");
        assert_eq!(Kind::of(&DataType::Utf8View).oid(), oid::TEXT);
        assert_eq!(Kind::of(&DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))).oid(), oid::TIMESTAMPTZ);
    }

    #[test]
    fn binary_dates_count_from_2000() {
        let column = Column::new(&(Arc::new(Date32Array::from(vec![10_958])) as ArrayRef), Kind::Date).expect("cast");
        let mut out = Vec::new();
        column.write(0, true, &mut out);
        assert_eq!(out, 1i32.to_be_bytes());
    }

    #[test]
    fn numerics_go_in_base_10000_digits() {
        // 12345.678 = 1 2345 . 6780: weight 1, dscale 3.
        let mut out = Vec::new();
        numeric_binary("12345.678", &mut out);
        assert_eq!(out, [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);
        let mut out = Vec::new();
        numeric_binary("-0.05", &mut out);
        assert_eq!(out, [0, 1, 255, 255, 0x40, 0, 0, 2, 0x01, 0xf4]);
        let mut out = Vec::new();
        numeric_binary("0", &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn parameters_read_as_the_query_needs() {
        let v = read_param(1, Some(b"42"), false, 0, &DataType::Int64).expect("int");
        assert_eq!(v, ScalarValue::Int64(Some(42)));
        let v = read_param(1, Some(&7i32.to_be_bytes()), true, oid::INT4, &DataType::Int64).expect("int");
        assert_eq!(v, ScalarValue::Int64(Some(7)));
        let v = read_param(2, Some(b"t"), false, 0, &DataType::Boolean).expect("bool");
        assert_eq!(v, ScalarValue::Boolean(Some(true)));
        let v = read_param(1, None, false, 0, &DataType::Utf8).expect("null");
        assert_eq!(v, ScalarValue::Utf8(None));
        let e = read_param(3, Some(b"abc"), false, 0, &DataType::Int32).expect_err("not a number");
        assert!(e.to_string().starts_with("parameter $3"), "{e}");
    }

    #[test]
    fn binary_numerics_oids_dates_and_timestamps_are_read_exactly_or_refused() {
        // 12345.678: weight 1, digits 1 2345 6780, scale 3.
        let numeric = |words: &[u16]| words.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
        assert_eq!(numeric_text(&numeric(&[3, 1, 0, 3, 1, 2345, 6780])).as_deref(), Ok("12345.678"));
        assert_eq!(numeric_text(&numeric(&[1, 0xFFFF, 0x4000, 2, 500])).as_deref(), Ok("-0.05"));
        assert_eq!(numeric_text(&numeric(&[0, 0, 0, 0])).as_deref(), Ok("0"));
        assert_eq!(numeric_text(&numeric(&[1, 2, 0, 0, 7])).as_deref(), Ok("700000000"));
        assert!(numeric_text(&numeric(&[2, 0, 0, 0, 1])).is_err(), "cut short");
        let value = read_param(1, Some(&numeric(&[2, 0, 0, 2, 12, 3400])), true, oid::NUMERIC, &DataType::Float64);
        assert_eq!(value.expect("numeric"), ScalarValue::Float64(Some(12.34)));
        let value = read_param(1, Some(&4_000_000_000u32.to_be_bytes()), true, oid::OID, &DataType::Int64);
        assert_eq!(value.expect("oid"), ScalarValue::Int64(Some(4_000_000_000)));
        assert!(read_param(1, Some(&i32::MAX.to_be_bytes()), true, oid::DATE, &DataType::Date32).is_err());
        let timestamp = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert!(read_param(1, Some(&i64::MAX.to_be_bytes()), true, oid::TIMESTAMP, &timestamp).is_err());
    }
}
