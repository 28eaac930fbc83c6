//! The ACME protocol, spoken by instant-acme: the account (created once, kept), one order per
//! Venue answered by HTTP-01, and the CA's reasons when it refuses.

use backstage_core::{Acme, Venue, error_chain};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use sha2::Digest as _;

use super::{Duration, Event, Production, ensure_dir, fs, write_atomic};

/// The account at the Production's CA: read from the state dir, or created once and kept
/// (mode 0600).
pub(super) async fn account(
    production: &Production,
    acme: &Acme,
    renew: bool,
    progress: &mut dyn FnMut(Event),
) -> Result<Account, String> {
    let dir = Production::acme_dir(&production.layout);
    ensure_dir(dir.as_path(), 0o711)?;
    let hash = sha2::Sha256::digest(acme.directory.as_str().as_bytes());
    let file = dir.as_path().join(format!(
        "account-{}.json",
        hash[..8].iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
    ));
    let builder = || match &acme.ca_file {
        Some(ca) => Account::builder_with_root(ca.as_path())
            .map_err(|e| format!("cannot use `ca_file` `{ca}` as the ACME server's CA: {e}")),
        None => Account::builder().map_err(|e| format!("cannot start an HTTPS client: {e}")),
    };
    let unreachable = |e: instant_acme::Error| {
        format!("the ACME server at {}: {}", acme.directory, error_chain(&e))
    };
    if let Some(json) = fs::read(&file).ok().filter(|_| !renew) {
        let credentials: AccountCredentials = serde_json::from_slice(&json)
            .map_err(|e| format!("the account file `{}` is unreadable: {e}", file.display()))?;
        return builder()?
            .from_credentials(credentials)
            .await
            .map_err(unreachable);
    }
    progress(Event::Step(format!(
        "creating an ACME account at {}",
        acme.directory
    )));
    let contact = acme.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = match &acme.eab {
        Some(eab) => {
            use base64::Engine as _;
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(eab.hmac_key.trim_end_matches('='))
                .map_err(|e| format!("`acme.eab.hmac_key` is not base64url: {e}"))?;
            Some(ExternalAccountKey::new(eab.kid.clone(), &key))
        }
        None => None,
    };
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.as_str().to_owned(),
            eab.as_ref(),
        )
        .await
        .map_err(unreachable)?;
    let json = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
    write_atomic(&file, &json, 0o600, None)?;
    Ok(account)
}

/// Orders one Venue's certificate: every server name, HTTP-01. Returns the chain and its key
/// (PEM).
pub(super) async fn order(
    production: &Production,
    account: &Account,
    venue: &Venue,
) -> Result<(String, String), String> {
    let identifiers: Vec<Identifier> = venue
        .server_names
        .iter()
        .map(|n| Identifier::Dns(n.to_string()))
        .collect();
    let api = |e: instant_acme::Error| error_chain(&e);
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(api)?;
    let challenges = production.acme_challenge_dir();
    ensure_dir(challenges.as_path(), 0o755)?;
    let mut tokens = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(api)?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(format!(
                        "the CA's authorization for `{}` is {other:?}",
                        authz.identifier()
                    ));
                }
            }
            let name = authz.identifier().to_string();
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| format!("the CA offers no HTTP-01 challenge for `{name}`"))?;
            let token = challenge.token.clone();
            if token.is_empty()
                || !token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "the CA sent a malformed challenge token for `{name}`"
                ));
            }
            let file = challenges.as_path().join(&token);
            write_atomic(
                &file,
                challenge.key_authorization().as_str().as_bytes(),
                0o644,
                None,
            )?;
            tokens.push(file);
            challenge.set_ready().await.map_err(api)?;
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(100))
            .backoff(1.5)
            .timeout(Duration::from_secs(60));
        let status = match order.poll_ready(&retries).await {
            Ok(s) => s,
            // An invalid order: its challenge says why.
            Err(instant_acme::Error::Api(problem)) => {
                return Err(refusal(&mut order, &problem.to_string()).await);
            }
            Err(e) => return Err(api(e)),
        };
        if status != OrderStatus::Ready {
            return Err(refusal(&mut order, &format!("the order is {status:?}")).await);
        }
        let key = order.finalize().await.map_err(api)?;
        let chain = order.poll_certificate(&retries).await.map_err(api)?;
        Ok((chain, key))
    }
    .await;
    for t in tokens {
        let _ = fs::remove_file(t);
    }
    result
}

/// Why an order did not become ready: the first challenge error the CA reports, else
/// `otherwise`.
async fn refusal(order: &mut instant_acme::Order, otherwise: &str) -> String {
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let name = authz.identifier().to_string();
        if let Ok(state) = authz.refresh().await {
            for c in &state.challenges {
                if let Some(problem) = &c.error {
                    return format!("the CA refused the challenge for `{name}`: {problem}");
                }
            }
        }
    }
    format!("the CA refused the order: {otherwise}")
}
