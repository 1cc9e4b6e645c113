//! `adjust-sink schema`: the DDL `migrate` runs, for a server generation given or asked.

use anyhow::Context;

use crate::cli::SchemaArgs;
use crate::clickhouse::Profile;
use crate::clickhouse::store::ClickHouseStore;

pub fn command(args: &SchemaArgs) -> anyhow::Result<()> {
    let target = args.clickhouse.table.target()?;
    let profile = match args.profile {
        Some(p) => p,
        None => {
            let config = args
                .clickhouse
                .config(false, std::time::Duration::from_secs(10))?;
            let store = ClickHouseStore::new(config.clone())?;
            let version = super::runtime()?
                .block_on(store.version())
                .with_context(|| {
                    format!(
                        "asking {} for its version (pass --profile legacy|modern to print without a server)",
                        config.url
                    )
                })?;
            Profile::for_version(&version)
        }
    };
    print!("{}", crate::clickhouse::schema::render(profile, &target));
    Ok(())
}
