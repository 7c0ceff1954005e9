//! White-label branding: a partner's display name, logo and colours, which the dashboard shows
//! to the partner's tenants instead of Mission Control's. [`BrandSpec::check`] is the one
//! validation every writer goes through; its errors name the field.
//!
//! Colours must keep the dashboard readable: the primary colour is the background of white
//! button text and the colour of links on white, so it needs the WCAG AA contrast for text
//! against white; the accent colour fills meters and borders, which need the contrast for
//! non-text elements.

use serde::{Deserialize, Serialize};

/// Longest display name: it sits beside the logo in the dashboard's header, which must still fit
/// a phone-width screen.
pub const MAX_BRAND_NAME_CHARS: usize = 60;
/// Largest logo, as the text of its URL (a `data:` URL holds the image itself). The logo is a
/// 28-pixel header image, stored in the database and sent with each dashboard start of every
/// tenant of the partner; 64 KiB is ample for that and keeps the answer small.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;
/// Largest brand file: the largest logo, the other fields and room for the YAML around them.
pub const MAX_BRAND_FILE_BYTES: usize = MAX_LOGO_BYTES + 4096;
/// Longest `https:` logo URL (what browsers and proxies reliably accept).
pub const MAX_LOGO_URL_BYTES: usize = 2048;
/// Image types a `data:` logo may have: what browsers render in an `<img>` (SVG there runs no
/// script).
pub const LOGO_TYPES: [&str; 5] = ["png", "jpeg", "gif", "webp", "svg+xml"];
/// Contrast the primary colour needs against white: WCAG 2.x AA for normal text (white button
/// labels on it, links in it on white cards).
pub const MIN_PRIMARY_CONTRAST: f64 = 4.5;
/// Contrast the accent colour needs against white: WCAG 2.x for non-text elements (meters,
/// borders).
pub const MIN_ACCENT_CONTRAST: f64 = 3.0;

/// A partner's brand as an operator or the partner states it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrandSpec {
    /// Shown in the header and the page title instead of "Mission Control".
    pub name: String,
    /// A `data:image/...;base64,` URL or an `https://` URL; none keeps Mission Control's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// `#rrggbb`: buttons, links, the current page in the menu.
    pub primary_color: String,
    /// `#rrggbb`: meters and highlights; the primary colour when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
}

/// What is wrong with a brand, and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BrandError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> BrandError {
    BrandError {
        field,
        message: message.into(),
    }
}

impl BrandSpec {
    /// Reads a brand file (YAML with the fields of [`BrandSpec`]) and checks it: a mistake in
    /// the file is reported at its line and column, a bad value by its field.
    pub fn from_yaml(text: &str) -> Result<BrandSpec, String> {
        if text.len() > MAX_BRAND_FILE_BYTES {
            return Err(format!("the file is larger than {MAX_BRAND_FILE_BYTES} bytes"));
        }
        let spec: BrandSpec = crate::from_yaml(text).map_err(|e| e.to_string())?;
        spec.check().map_err(|e| e.to_string())
    }

    /// Checks every field and returns the brand with its name trimmed and its colours in lower
    /// case (how it is stored).
    pub fn check(&self) -> Result<BrandSpec, BrandError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if name.chars().count() > MAX_BRAND_NAME_CHARS {
            return Err(err(
                "name",
                format!("must be at most {MAX_BRAND_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(err("name", "must not contain control characters"));
        }
        if let Some(logo) = &self.logo {
            check_logo(logo)?;
        }
        let primary = check_color("primary_color", &self.primary_color, MIN_PRIMARY_CONTRAST)?;
        let accent = self
            .accent_color
            .as_deref()
            .map(|c| check_color("accent_color", c, MIN_ACCENT_CONTRAST))
            .transpose()?;
        Ok(BrandSpec {
            name: name.to_string(),
            logo: self.logo.clone(),
            primary_color: primary,
            accent_color: accent,
        })
    }
}

fn check_logo(logo: &str) -> Result<(), BrandError> {
    if let Some(rest) = logo.strip_prefix("data:image/") {
        if logo.len() > MAX_LOGO_BYTES {
            return Err(err(
                "logo",
                format!(
                    "is {} KiB; a logo may be at most {} KiB",
                    logo.len().div_ceil(1024),
                    MAX_LOGO_BYTES / 1024
                ),
            ));
        }
        let Some((kind, data)) = rest.split_once(";base64,") else {
            return Err(err("logo", "a data: logo must be `data:image/<type>;base64,<data>`"));
        };
        if !LOGO_TYPES.contains(&kind) {
            return Err(err(
                "logo",
                format!("image type `{kind}` is not one of {}", LOGO_TYPES.join(", ")),
            ));
        }
        let body = data.trim_end_matches('=');
        let valid = !data.is_empty()
            && data.len() % 4 == 0
            && data.len() - body.len() <= 2
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !valid {
            return Err(err("logo", "the data of a data: logo is not valid base64"));
        }
        return Ok(());
    }
    if let Some(rest) = logo.strip_prefix("https://") {
        if logo.len() > MAX_LOGO_URL_BYTES {
            return Err(err(
                "logo",
                format!("an https: logo URL may be at most {MAX_LOGO_URL_BYTES} bytes"),
            ));
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_ok = !host.is_empty()
            && !host.contains('@')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
        if !host_ok {
            return Err(err("logo", format!("`{host}` is not a host name")));
        }
        if logo
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\'))
        {
            return Err(err("logo", "the URL must not contain spaces, quotes or angle brackets"));
        }
        return Ok(());
    }
    Err(err("logo", "must be an https:// URL or a data:image/...;base64, URL"))
}

/// Checks `#rrggbb` and its contrast against white; returns it in lower case.
fn check_color(field: &'static str, color: &str, min_contrast: f64) -> Result<String, BrandError> {
    let hex = color
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| err(field, format!("`{color}` is not a colour of the form #rrggbb")))?;
    let contrast = contrast_with_white(hex);
    if contrast < min_contrast {
        return Err(err(
            field,
            format!(
                "{color} is too light: its contrast with white is {contrast:.1}:1 and at least \
                 {min_contrast:.1}:1 is needed to stay readable"
            ),
        ));
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// The WCAG 2.x contrast ratio of the colour `rrggbb` with white.
pub fn contrast_with_white(rrggbb: &str) -> f64 {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&rrggbb[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    1.05 / (luminance + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand() -> BrandSpec {
        BrandSpec {
            name: " Northwind Partners ".into(),
            logo: Some("data:image/png;base64,iVBORw0KGgo=".into()),
            primary_color: "#7A1F5C".into(),
            accent_color: None,
        }
    }

    #[test]
    fn a_good_brand_is_normalised() {
        let b = brand().check().unwrap();
        assert_eq!(b.name, "Northwind Partners");
        assert_eq!(b.primary_color, "#7a1f5c");
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases: Vec<(BrandSpec, &str, &str)> = vec![
            (
                BrandSpec {
                    primary_color: "red".into(),
                    ..brand()
                },
                "primary_color",
                "#rrggbb",
            ),
            (
                BrandSpec {
                    primary_color: "#ffdd00".into(),
                    ..brand()
                },
                "primary_color",
                "too light",
            ),
            (
                BrandSpec {
                    accent_color: Some("#fff".into()),
                    ..brand()
                },
                "accent_color",
                "#rrggbb",
            ),
            (
                BrandSpec {
                    name: "  ".into(),
                    ..brand()
                },
                "name",
                "empty",
            ),
            (
                BrandSpec {
                    name: "x".repeat(61),
                    ..brand()
                },
                "name",
                "at most 60",
            ),
            (
                BrandSpec {
                    logo: Some("http://x.io/l.png".into()),
                    ..brand()
                },
                "logo",
                "https://",
            ),
            (
                BrandSpec {
                    logo: Some("javascript:alert(1)".into()),
                    ..brand()
                },
                "logo",
                "https://",
            ),
            (
                BrandSpec {
                    logo: Some("data:text/html;base64,PGI+".into()),
                    ..brand()
                },
                "logo",
                "https://",
            ),
            (
                BrandSpec {
                    logo: Some("data:image/bmp;base64,AAAA".into()),
                    ..brand()
                },
                "logo",
                "bmp",
            ),
            (
                BrandSpec {
                    logo: Some("data:image/png;base64,not base64!".into()),
                    ..brand()
                },
                "logo",
                "base64",
            ),
            (
                BrandSpec {
                    logo: Some(format!("data:image/png;base64,{}", "A".repeat(MAX_LOGO_BYTES))),
                    ..brand()
                },
                "logo",
                "at most 64 KiB",
            ),
            (
                BrandSpec {
                    logo: Some("https://\"onerror=x/".into()),
                    ..brand()
                },
                "logo",
                "host",
            ),
        ];
        for (spec, field, words) in cases {
            let e = spec.check().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().contains(words), "{e}");
        }
        assert!(
            BrandSpec {
                logo: Some("https://cdn.example.com/logo.svg?v=2".into()),
                ..brand()
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn contrast_matches_wcag() {
        assert!((contrast_with_white("000000") - 21.0).abs() < 0.01);
        assert!((contrast_with_white("ffffff") - 1.0).abs() < 0.01);
        // Mission Control's own blue passes as primary.
        assert!(contrast_with_white("2f5d8a") > MIN_PRIMARY_CONTRAST);
    }
}
