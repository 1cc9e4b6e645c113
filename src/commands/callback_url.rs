//! `adjust-sink callback-url`: the callback URLs to paste into Adjust.

use crate::cli::CallbackUrlArgs;

pub fn command(args: &CallbackUrlArgs) -> anyhow::Result<()> {
    let output = crate::callback_url::generate(&args.options())?;
    for warning in &output.warnings {
        eprintln!("adjust-sink: warning: {warning}");
    }
    print!("{}", output.render());
    Ok(())
}
