//! `org show` and `org set KEY VALUE`.

use super::{Context, print_json};
use crate::cli::OrgCommand;
use crate::domain::ConfigKey;
use crate::error::{CommandError, Exit, usage};

pub(super) async fn run(context: &Context, command: OrgCommand) -> Result<Exit, CommandError> {
    if let OrgCommand::Set { key, value } = command {
        let key: ConfigKey = key.parse().map_err(usage)?;
        let value = key
            .normalize(&value)
            .map_err(|e| usage(format!("invalid value for {key}: {e}")))?;
        context
            .store
            .set_org_config(context.org_id, key, value.as_deref())
            .await?;
    }
    print_json(&context.org_config().await?.to_json())?;
    Ok(Exit::Completed)
}
