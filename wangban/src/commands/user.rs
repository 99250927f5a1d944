//! `wangban user …`: dashboard accounts. Passwords are hashed with argon2
//! before they reach the store; a generated password is printed once.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use dashboards::auth::{Role, hash_password};
use rand::RngCore;
use serde_json::json;

use crate::cli::{UserArgs, UserCommand};
use crate::settings::Settings;

/// A random password: 16 characters from an alphabet without look-alikes.
pub(crate) fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!("--name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// Creates an account with a checked role; returns the password when it was generated.
pub(crate) async fn add(
    store: &store::Store,
    name: &str,
    role: &str,
    section: Option<&str>,
    password: Option<String>,
) -> anyhow::Result<Option<String>> {
    check_name(name)?;
    let role = Role::from_code(role)
        .with_context(|| format!("unknown role {role:?}; expected one of {}", Role::ALL.map(Role::code).join(", ")))?;
    if matches!(role, Role::Staff | Role::Operator) && section.is_none() {
        bail!("a {} account needs --section (the section or window it belongs to)", role.code());
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(generate_password);
    let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
    store.create_account(name, role.code(), section, &hash, Utc::now()).await.map_err(|e| match e {
        store::StoreError::AlreadyExists { .. } => anyhow::anyhow!("an account named {name:?} already exists"),
        other => other.into(),
    })?;
    Ok(generated.then_some(password))
}

pub(crate) async fn run(args: UserArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let now = Utc::now();
    match args.command {
        UserCommand::Add { name, role, section, password } => {
            let generated = add(&store, &name, &role, section.as_deref(), password).await?;
            println!("{}", json!({ "name": name, "role": role, "section": section, "password": generated }));
            if generated.is_some() {
                eprintln!("the generated password is shown only now");
            }
        }
        UserCommand::List => {
            for a in store.accounts().await? {
                println!(
                    "{}",
                    json!({
                        "name": a.name, "role": a.role, "section": a.section, "disabled": a.disabled,
                        "locked_until": a.locked_until.map(|t| t.to_rfc3339()), "created_at": a.created_at.to_rfc3339(),
                    })
                );
            }
        }
        UserCommand::Disable { name } => {
            store.set_account_disabled(&name, true, now).await.map_err(not_found(&name))?
        }
        UserCommand::Enable { name } => {
            store.set_account_disabled(&name, false, now).await.map_err(not_found(&name))?
        }
        UserCommand::Reset { name, password } => {
            let generated = password.is_none();
            let password = password.unwrap_or_else(generate_password);
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            store.reset_account_password(&name, &hash, now).await.map_err(not_found(&name))?;
            if generated {
                println!("{}", json!({ "name": name, "password": password }));
                eprintln!("the generated password is shown only now");
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn not_found(name: &str) -> impl FnOnce(store::StoreError) -> anyhow::Error + '_ {
    move |e| match e {
        store::StoreError::NotFound { .. } => anyhow::anyhow!("no account named {name:?}"),
        other => other.into(),
    }
}
