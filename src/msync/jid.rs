//! JIDs as the SDK prints them: `app_key_name@domain/client_resource`, leaving out the parts
//! that are absent (`z13`, `z12/android_3c4df…`,
//! `easemob-demo#chatdemoui_z13@easemob.com/webim_device_uuid`).

use std::fmt;

/// The four parts of a JID, borrowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JidParts<'a> {
    pub app_key: Option<&'a str>,
    pub name: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub client_resource: Option<&'a str>,
}

impl<'a> JidParts<'a> {
    pub fn from_pb(j: &'a super::pb::Jid) -> Self {
        JidParts {
            app_key: j.app_key.as_deref(),
            name: j.name.as_deref(),
            domain: j.domain.as_deref(),
            client_resource: j.client_resource.as_deref(),
        }
    }
}

impl fmt::Display for JidParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        if let Some(a) = self.app_key.filter(|s| !s.is_empty()) {
            f.write_str(a)?;
            any = true;
        }
        if let Some(n) = self.name.filter(|s| !s.is_empty()) {
            if any {
                f.write_str("_")?;
            }
            f.write_str(n)?;
        }
        if let Some(d) = self.domain.filter(|s| !s.is_empty()) {
            write!(f, "@{d}")?;
        }
        if let Some(r) = self.client_resource.filter(|s| !s.is_empty()) {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_sdk() {
        let full = JidParts {
            app_key: Some("easemob-demo#chatdemoui"),
            name: Some("z13"),
            domain: Some("easemob.com"),
            client_resource: Some("webim_device_uuid"),
        };
        assert_eq!(full.to_string(), "easemob-demo#chatdemoui_z13@easemob.com/webim_device_uuid");
        let short = JidParts { name: Some("z13"), ..Default::default() };
        assert_eq!(short.to_string(), "z13");
        let res = JidParts { name: Some("z13"), client_resource: Some("r"), ..Default::default() };
        assert_eq!(res.to_string(), "z13/r");
        assert_eq!(JidParts::default().to_string(), "");
    }
}
