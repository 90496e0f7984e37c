//! Job signatures (`../shared/spec/trust.md` §8): the issuer signs the bytes of
//! `{"job": <job without its top-level "sig">, "worker_id": <id>}` serialized
//! exactly as Python's `json.dumps(…, sort_keys=True, separators=(",", ":"))`.
//! serde_json keeps each number's literal (`arbitrary_precision`), so integers
//! of any size survive and a literal with `.`, `e` or `E` is a float, as in Python.
//!
//! [`JobFormat::V2`] prefixes that message with `tessera-job/2` and LF, so a job
//! signature can never be mistaken for a signature of another protocol (W7).

use serde_json::{Map, Number, Value};

use crate::{Error, PublicKey, SecretKey};

/// Which message a job signature covers; signer and verifier must agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobFormat {
    /// trust-core's bare canonical JSON (the default, for compatibility).
    #[default]
    V1,
    /// `tessera-job/2` LF canonical JSON: domain-separated.
    V2,
}

/// The context string that starts a [`JobFormat::V2`] message.
pub const JOB_V2_CONTEXT: &str = "tessera-job/2\n";

/// The exact bytes signed for `job` and `worker_id` (v1, trust-core).
///
/// # Errors
/// [`Error::Job`] when a number cannot be represented as Python would.
pub fn job_message(job: &Map<String, Value>, worker_id: &str) -> Result<String, Error> {
    job_message_as(JobFormat::V1, job, worker_id)
}

/// The exact bytes signed for `job` and `worker_id` in `format`.
///
/// # Errors
/// As [`job_message`].
pub fn job_message_as(
    format: JobFormat,
    job: &Map<String, Value>,
    worker_id: &str,
) -> Result<String, Error> {
    let mut without_sig = job.clone();
    without_sig.shift_remove("sig");
    let mut outer = Map::new();
    outer.insert("job".to_owned(), Value::Object(without_sig));
    outer.insert("worker_id".to_owned(), Value::String(worker_id.to_owned()));
    let mut out = match format {
        JobFormat::V1 => String::new(),
        JobFormat::V2 => JOB_V2_CONTEXT.to_owned(),
    };
    write_value(&mut out, &Value::Object(outer))?;
    Ok(out)
}

/// Parses job JSON text (an object) with Python's rules (duplicate keys keep the last value).
///
/// # Errors
/// [`Error::Job`] for invalid JSON or a non-object.
pub fn parse_job(text: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::Job("job must be a JSON object".into())),
        Err(e) => Err(Error::Job(format!("job is not JSON: {e}"))),
    }
}

/// Signs a job (v1) with the issuer key: 128 lower-case hex digits.
///
/// # Errors
/// As [`job_message`].
pub fn sign_job(
    issuer: &SecretKey,
    job: &Map<String, Value>,
    worker_id: &str,
) -> Result<String, Error> {
    sign_job_as(JobFormat::V1, issuer, job, worker_id)
}

/// Signs a job in `format` with `key`: 128 lower-case hex digits.
///
/// # Errors
/// As [`job_message`].
pub fn sign_job_as(
    format: JobFormat,
    key: &SecretKey,
    job: &Map<String, Value>,
    worker_id: &str,
) -> Result<String, Error> {
    Ok(key.sign_hex(job_message_as(format, job, worker_id)?.as_bytes()))
}

/// Verifies `job["sig"]` (v1).
///
/// # Errors
/// [`Error::Job`]: no signature, malformed signature, or it does not verify.
pub fn verify_job(
    issuer: &PublicKey,
    job: &Map<String, Value>,
    worker_id: &str,
) -> Result<(), Error> {
    verify_job_as(JobFormat::V1, issuer, job, worker_id)
}

/// Verifies `job["sig"]` as a `format` signature by `key`.
///
/// # Errors
/// As [`verify_job`].
pub fn verify_job_as(
    format: JobFormat,
    key: &PublicKey,
    job: &Map<String, Value>,
    worker_id: &str,
) -> Result<(), Error> {
    let signature = match job.get("sig") {
        Some(Value::String(sig)) if !sig.is_empty() => sig,
        _ => return Err(Error::Job("job carries no issuer signature".into())),
    };
    let message = job_message_as(format, job, worker_id)?;
    match key.verify_hex(message.as_bytes(), signature) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Job("job signature failed verification".into())),
        Err(_) => Err(Error::Job("malformed issuer key or job signature".into())),
    }
}

fn write_value(out: &mut String, value: &Value) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, &map[key])?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Python's `json` string escaping with `ensure_ascii=True`.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, number: &Number) -> Result<(), Error> {
    let literal = number.to_string();
    if !literal.contains(['.', 'e', 'E']) {
        // An integer: Python prints it in plain decimal (`-0` is 0).
        let digits = literal.trim_start_matches('-');
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            out.push('0');
        } else {
            if literal.starts_with('-') {
                out.push('-');
            }
            out.push_str(digits);
        }
        return Ok(());
    }
    let value: f64 = literal
        .parse()
        .map_err(|_| Error::Job(format!("number {literal} is out of range")))?;
    out.push_str(&python_float_repr(value));
    Ok(())
}

/// Python's `repr(float)`: the shortest round-tripping digits, positional when
/// `1e-4 <= |x| < 1e16` (or zero), else `d[.ddd]e±XX`.
pub(crate) fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    // ryu gives the shortest digits; take them apart into digits and exponent.
    let mut buffer = ryu::Buffer::new();
    let shortest = buffer.format_finite(value.abs());
    let (mantissa, exponent) = match shortest.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (shortest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int_part}{frac_part}");
    // Decimal exponent of the first digit: value = 0.d1d2… × 10^point.
    let mut point = int_part.len() as i32 + exponent;
    let leading_zeros = digits.len() - digits.trim_start_matches('0').len();
    digits = digits.trim_start_matches('0').to_owned();
    point -= leading_zeros as i32;
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let exp10 = point - 1;
    if (-4..16).contains(&exp10) {
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let mantissa = if digits.len() == 1 {
            digits.to_owned()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        format!(
            "{sign}{mantissa}e{}{:02}",
            if exp10 < 0 { '-' } else { '+' },
            exp10.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        for (value, text) in [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (1.2345678901234568e16, "1.2345678901234568e+16"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1500.0, "1500.0"),
        ] {
            assert_eq!(python_float_repr(value), text, "{value:e}");
        }
    }

    #[test]
    fn the_spec_example() {
        let job = parse_job(r#"{"job_id":"j-1","kind":"transcribe","input":"s3://bucket/a.wav"}"#)
            .unwrap();
        assert_eq!(
            job_message(&job, "gpu-1").unwrap(),
            r#"{"job":{"input":"s3://bucket/a.wav","job_id":"j-1","kind":"transcribe"},"worker_id":"gpu-1"}"#
        );
        let nested = parse_job(r#"{"a":{"sig":1},"sig":"x","n":1E2,"i":-0,"é":"🎧/"}"#).unwrap();
        assert_eq!(
            job_message(&nested, "w").unwrap(),
            r#"{"job":{"a":{"sig":1},"i":0,"n":100.0,"\u00e9":"\ud83c\udfa7/"},"worker_id":"w"}"#
        );
    }
}
