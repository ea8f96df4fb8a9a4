//! `external-id generate`: one org-level external ID.

use serde_json::json;

use super::{Context, print_json};
use crate::cli::ExternalIdCommand;
use crate::error::{ApiError, CommandError, ErrorCode, Exit};

pub(super) async fn run(context: &Context, command: ExternalIdCommand) -> Result<Exit, CommandError> {
    let ExternalIdCommand::Generate { source_account } = command;
    let org = context.org_config().await?;
    if !org.generation_enabled {
        return Err(ApiError::new(
            ErrorCode::GenerationDisabled,
            "external ID generation is disabled: set CONF_CARD_NUMBER_GENERATION_ENABLED to true",
        )
        .into());
    }
    if let Some(account) = &source_account
        && !org.source_accounts.contains(account)
    {
        return Err(ApiError::new(
            ErrorCode::GenerationDisabled,
            format!("source account {account:?} is not listed in SOURCE_ACCOUNTS_EXTERNALID_ENABLED"),
        )
        .into());
    }
    let format = match org.external_id_format() {
        None => {
            return Err(ApiError::new(ErrorCode::CardLengthInvalid, "CONF_CARD_NUMBER_LENGTH is not set").into());
        }
        Some(Err(no_digits)) => {
            return Err(ApiError::new(
                ErrorCode::CardLengthInvalid,
                format!("CONF_CARD_NUMBER_LENGTH {no_digits}"),
            )
            .into());
        }
        Some(Ok(format)) => format,
    };
    let external_id = context
        .store
        .next_external_id(context.org_id, &format, org.offset)
        .await?;
    print_json(&json!({"entity": external_id, "warnings": []}))?;
    Ok(Exit::Completed)
}
