//! The Rows section of the command line: how a callback, or a row of an export, becomes a row.
//! `serve` and `import` flatten the same section, so they cannot build rows differently.

use clap::Args;

use super::{Options, Privacy};
use crate::adjust::DecodeOptions;
use crate::adjust::decode::CustomColumn;
use crate::settings::{ConfigError, Secret, err, values};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rows")]
pub struct RowArgs {
    /// Treat query key ALIAS as the placeholder NAME (`ALIAS=NAME`, e.g. `device_id=adid`;
    /// repeatable, or comma-separated in the env var).
    #[arg(
        long = "param-alias",
        value_name = "ALIAS=NAME",
        env = "ADJUST_SINK_PARAM_ALIAS",
        value_delimiter = ','
    )]
    pub param_alias: Vec<String>,

    /// Store this text placeholder (`adid`, `idfa`, `gps_adid`, `android_id`, `ip_address`, …)
    /// as the hex HMAC-SHA256 of its value under the key in ADJUST_SINK_PSEUDONYM_KEY, wherever
    /// it would be written (repeatable, or comma-separated in the env var). `ip_address` also
    /// pseudonymizes `source_ip`. A device identifier goes with its whole family (any member
    /// names it): adid; idfa (idfa_upper, idfa_md5, idfa_md5_hex); idfv; gps_adid
    /// (gps_adid_md5); android_id (android_id_md5); fire_adid; oaid (oaid_md5); web_uuid;
    /// win_adid.
    #[arg(
        long = "pseudonymize",
        value_name = "NAME",
        env = "ADJUST_SINK_PSEUDONYMIZE",
        value_delimiter = ','
    )]
    pub pseudonymize: Vec<String>,

    /// The secret key of --pseudonymize (set it in the environment, not on the command line).
    #[arg(
        long = "pseudonym-key",
        env = "ADJUST_SINK_PSEUDONYM_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub pseudonym_key: Option<Secret>,

    /// Never store this placeholder (column empty or NULL, left out of `extra` and `raw_query`;
    /// repeatable, or comma-separated in the env var). `ip_address` also empties `source_ip`. A
    /// device identifier goes with its whole family, as for --pseudonymize.
    #[arg(
        long = "drop",
        value_name = "NAME",
        env = "ADJUST_SINK_DROP",
        value_delimiter = ','
    )]
    pub drop: Vec<String>,
}

impl RowArgs {
    /// The validated row settings, with the table's own columns (`--column`).
    pub fn options(&self, columns: &[CustomColumn]) -> Result<Options, ConfigError> {
        let mut decode = DecodeOptions::new();
        for c in columns {
            decode = decode.with_column(*c);
        }
        for pair in values(&self.param_alias) {
            let Some((alias, name)) = pair.split_once('=') else {
                return err(format!(
                    "--param-alias `{pair}` must be ALIAS=NAME, e.g. device_id=adid"
                ));
            };
            decode = decode
                .with_alias(alias.trim(), name.trim())
                .map_err(|e| ConfigError(format!("--param-alias `{pair}`: {e}")))?;
        }
        let privacy = Privacy::new(
            self.pseudonym_key.as_ref().map(|k| k.expose().as_bytes()),
            &self.pseudonymize,
            &self.drop,
        )
        .map_err(ConfigError)?;
        Ok(Options { decode, privacy })
    }
}
