//! `series create` and `series list`.

use serde_json::json;

use super::{Context, print_json, read_json_body};
use crate::cli::{SeriesCommand, SeriesCreateArgs};
use crate::domain::SeriesRequest;
use crate::domain::series::GenerationConfigRequest;
use crate::error::{CommandError, Exit};

pub(super) async fn run(context: &Context, command: SeriesCommand) -> Result<Exit, CommandError> {
    match command {
        SeriesCommand::Create(args) => {
            let request = match &args.json {
                Some(path) => read_json_body(path)?,
                None => request_from_flags(*args),
            };
            let series = request.validate()?;
            let id = context.store.create_series(context.org_id, &series).await?;
            print_json(&json!({"entity": id, "warnings": []}))?;
        }
        SeriesCommand::List => {
            let series = context.store.list_series(context.org_id).await?;
            print_json(&json!(series.iter().map(|s| s.to_json()).collect::<Vec<_>>()))?;
        }
    }
    Ok(Exit::Completed)
}

fn request_from_flags(args: SeriesCreateArgs) -> SeriesRequest {
    let has_configuration = args.prefix.is_some()
        || args.suffix.is_some()
        || args.offset.is_some()
        || args.length.is_some()
        || args.method.is_some()
        || args.values_to_include_for_checksum_digit.is_some();
    SeriesRequest {
        code: args.code,
        name: args.name,
        series_type: args.series_type,
        expiry_days: args.expiry_days,
        max_active_cards_per_customer: args.max_active_cards_per_customer,
        card_generation_configuration: has_configuration.then_some(GenerationConfigRequest {
            prefix: args.prefix,
            suffix: args.suffix,
            offset: args.offset,
            length: args.length,
            method: args.method,
            values_to_include_for_checksum_digit: args.values_to_include_for_checksum_digit,
        }),
        card_generation_enabled: args.generation_enabled,
        is_active: args.active,
        trigger: args.trigger,
    }
}
