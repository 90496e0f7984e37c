//! The values a client answers body commands with: a TOML profile or flags,
//! with clearly fake defaults (never anyone's personal data).

use std::path::Path;

use serde::Deserialize;

use crate::command::Body;
use crate::Error;

/// One value per body command.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// `FULL_NAME`
    pub full_name: String,
    /// `EMAIL1`
    pub email1: String,
    /// `EMAIL2`
    pub email2: String,
    /// `SOCIAL`
    pub social: String,
    /// `BIRTHDATE`
    pub birthdate: String,
    /// `COUNTRY`
    pub country: String,
    /// `ADDR_LINE1`
    pub addr_line1: String,
    /// `ADDR_LINE2`
    pub addr_line2: String,
}

impl Default for Profile {
    /// Obviously fake sample values.
    fn default() -> Self {
        Self {
            full_name: "Sample Person".to_owned(),
            email1: "sample1@example.invalid".to_owned(),
            email2: "sample2@example.invalid".to_owned(),
            social: "@sample@example.invalid".to_owned(),
            birthdate: "01.01.1970".to_owned(),
            country: "Nowhere".to_owned(),
            addr_line1: "1 Example Street".to_owned(),
            addr_line2: "Sample Town".to_owned(),
        }
    }
}

impl Profile {
    /// Reads a TOML profile (keys `full_name`, `email1`, …); missing keys keep the defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let profile: Self = toml::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "{}: {}",
                path.display(),
                tessera_guard::toml_error_sentence(&e, &text)
            ))
        })?;
        for (body, value) in crate::command::BODY.iter().map(|b| (b, profile.value(*b))) {
            if value.contains('\n') || value.len() > 900 {
                return Err(Error::Config(format!(
                    "{}: {body} must be one line of at most 900 bytes",
                    path.display()
                )));
            }
        }
        Ok(profile)
    }

    /// The answer to `body`.
    pub fn value(&self, body: Body) -> &str {
        match body {
            Body::FullName => &self.full_name,
            Body::Email1 => &self.email1,
            Body::Email2 => &self.email2,
            Body::Social => &self.social,
            Body::Birthdate => &self.birthdate,
            Body::Country => &self.country,
            Body::AddrLine1 => &self.addr_line1,
            Body::AddrLine2 => &self.addr_line2,
        }
    }

    /// Sets the answer to `body`.
    pub fn set(&mut self, body: Body, value: String) {
        let slot = match body {
            Body::FullName => &mut self.full_name,
            Body::Email1 => &mut self.email1,
            Body::Email2 => &mut self.email2,
            Body::Social => &mut self.social,
            Body::Birthdate => &mut self.birthdate,
            Body::Country => &mut self.country,
            Body::AddrLine1 => &mut self.addr_line1,
            Body::AddrLine2 => &mut self.addr_line2,
        };
        *slot = value;
    }
}
