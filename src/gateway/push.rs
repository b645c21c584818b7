//! Push tokens (`account-devicetoken`): stored with the account and written into the
//! Contact of its REGISTERs, so the registrar (or a push proxy) can wake the device for an
//! incoming call: RFC 8599's `pn-provider`, `pn-prid`, `pn-param` (section 4.1), or
//! SylkServer's `pn-app`, `pn-tok`, `pn-type`, `pn-device`, `pn-silent`
//! (`sip.push_parameters`). A new token applies from the account's next REGISTER; none
//! (an empty token) removes them, and so does `account-unregister` (SylkServer drops the
//! stored token there).

use super::{ClientId, Gateway, GatewayError};
use crate::config::PushParameters;
use crate::sylkrtc::request::DeviceToken;

/// RFC 8599 section 4.1 `pn-provider` for a sylkRTC `platform`: Apple's service for iOS,
/// Firebase Cloud Messaging for Android; anything else as the client names it.
fn provider(platform: &str) -> String {
    match platform.to_ascii_lowercase().as_str() {
        "ios" | "apple" | "apns" => "apns".to_owned(),
        "android" | "firebase" | "fcm" => "fcm".to_owned(),
        other => other.to_owned(),
    }
}

/// The Contact URI parameters for `token` in `form` (empty without a token).
pub(super) fn contact_params(token: &DeviceToken, form: PushParameters) -> Vec<(String, String)> {
    let Some(tok) = &token.token else {
        return Vec::new();
    };
    let mut params = Vec::new();
    match form {
        PushParameters::Rfc8599 => {
            let platform = token.platform.as_deref().unwrap_or("fcm");
            params.push(("pn-provider".to_owned(), provider(platform)));
            params.push(("pn-prid".to_owned(), tok.clone()));
            if let Some(app) = &token.app {
                params.push(("pn-param".to_owned(), app.clone()));
            }
        }
        PushParameters::SylkServer => {
            if let Some(app) = &token.app {
                params.push(("pn-app".to_owned(), app.clone()));
            }
            params.push(("pn-tok".to_owned(), tok.clone()));
            if let Some(platform) = &token.platform {
                params.push(("pn-type".to_owned(), platform.clone()));
            }
            if let Some(device) = &token.device {
                params.push(("pn-device".to_owned(), device.clone()));
            }
            params.push((
                "pn-silent".to_owned(),
                if token.silent { "1" } else { "0" }.into(),
            ));
        }
    }
    params
}

impl Gateway {
    /// `account-devicetoken`.
    pub(super) fn device_token(
        &mut self,
        client: ClientId,
        token: DeviceToken,
    ) -> Result<(), GatewayError> {
        let id = self.find_account(client, token.account.as_str())?;
        let params = contact_params(&token, self.config.push_parameters);
        let account = self.accounts.get_mut(id.0).ok_or(GatewayError::Internal)?;
        account.push = (!params.is_empty()).then_some(params);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sylkrtc::Aor;

    fn token() -> DeviceToken {
        DeviceToken {
            account: Aor::parse("a@b").unwrap(),
            token: Some("abc:123".into()),
            platform: Some("ios".into()),
            device: Some("dev1".into()),
            silent: true,
            app: Some("com.example.sylk".into()),
        }
    }

    #[test]
    fn both_forms() {
        let p = |v: Vec<(String, String)>| {
            v.into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(";")
        };
        assert_eq!(
            p(contact_params(&token(), PushParameters::Rfc8599)),
            "pn-provider=apns;pn-prid=abc:123;pn-param=com.example.sylk"
        );
        assert_eq!(
            p(contact_params(&token(), PushParameters::SylkServer)),
            "pn-app=com.example.sylk;pn-tok=abc:123;pn-type=ios;pn-device=dev1;pn-silent=1"
        );
        let none = DeviceToken {
            token: None,
            ..token()
        };
        assert!(contact_params(&none, PushParameters::Rfc8599).is_empty());
    }
}
