//! Rules for text that comes in from outside, applied at the edge so both databases see the same
//! input: PostgreSQL cannot store a NUL character, SQLite can, and neither should have to decide.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Refuses a request whose path or query holds an encoded NUL (`%00`): no name, id or search
/// can contain one, and PostgreSQL would answer it with an error.
pub async fn refuse_nul_in_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::bad_request(
            "the address contains a NUL character (%00), which no name, id or search can hold",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a JSON value holds a NUL character in any string (or object key).
pub fn json_has_nul(v: &serde_json::Value) -> bool {
    let mut todo = vec![v];
    while let Some(v) = todo.pop() {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => return true,
            serde_json::Value::Array(items) => todo.extend(items),
            serde_json::Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                todo.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

/// Text a device reported about itself (its name, model, OS version): control characters
/// removed and the length bounded, since the device, not an administrator, chose it.
pub fn device_text(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// An enrollment id as NanoMDM forms them: a UDID, an enrollment id, or `id:user-channel`.
pub fn check_enrollment_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "enrollment id {:?} must be 1 to 128 letters, digits and - _ . :",
            device_text(id, 80)
        ))
    }
}

/// A field an administrator gives (a device's name or model): printable, at most `max_chars`.
pub fn check_text(field: &str, s: &str, max_chars: usize) -> Result<String, String> {
    let s = s.trim();
    if s.chars().count() > max_chars || s.contains(char::is_control) {
        return Err(format!(
            "{field} must be at most {max_chars} printable characters"
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_anywhere_in_json_is_found() {
        let v: serde_json::Value = serde_json::from_str(r#"{"a":[1,{"b":"x\u0000y"}]}"#).unwrap();
        assert!(json_has_nul(&v));
        let v: serde_json::Value = serde_json::from_str(r#"{"a\u0000":1}"#).unwrap();
        assert!(json_has_nul(&v));
        let v: serde_json::Value = serde_json::from_str(r#"{"a":"\\u0000"}"#).unwrap();
        assert!(!json_has_nul(&v), "an escaped backslash is not a NUL");
    }

    #[test]
    fn device_words_are_cleaned_and_ids_checked() {
        assert_eq!(
            device_text("Cart\u{0}\n 3 iPad\u{1b}[31m", 200),
            "Cart 3 iPad[31m"
        );
        assert_eq!(device_text(&"x".repeat(10_000), 200).len(), 200);
        assert!(check_enrollment_id("00008020-000915083C80012E").is_ok());
        assert!(check_enrollment_id("ABC:user-channel.1").is_ok());
        assert!(check_enrollment_id(&"A".repeat(129)).is_err());
        assert!(check_enrollment_id("<script>").is_err());
        assert!(check_enrollment_id("").is_err());
        assert!(check_text("name", "Lab\u{0}", 200).is_err());
        assert_eq!(check_text("name", " Lab 3 ", 200).unwrap(), "Lab 3");
    }
}
