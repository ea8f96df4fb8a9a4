//! `cards generate`, `cards export`, `cards add` and `cards set-external-id`.

use std::io::Write;
use std::path::PathBuf;

use futures_util::TryStreamExt;
use serde_json::{Value, json};

use super::{Context, Destination, Settings, print_json, read_json_body};
use crate::cli::{CardsCommand, GenerateArgs};
use crate::domain::card::{DEFAULT_STATUS_LABEL, check_number_fits_series, check_status_reason};
use crate::domain::{CardRequest, NewCard, Rejection, Series, SystemStatus};
use crate::error::{ApiError, CommandError, ErrorCode, Exit, failed, output_failed, usage};
use crate::output::PendingOutput;
use crate::report::metrics::RunMetrics;
use crate::store::{CardView, GenerateCards, SeriesRef};

/// Most cards one `cards generate` call may make.
pub const MAX_GENERATE_COUNT: u64 = 100_000;

pub(super) async fn run(settings: &Settings, command: CardsCommand) -> Result<Exit, CommandError> {
    match command {
        CardsCommand::Generate(args) => generate(settings, args).await?,
        CardsCommand::Export { run_id, output } => export(settings, run_id, output).await?,
        CardsCommand::Add { json } => add(&settings.open().await?, &read_json_body(&json)?).await?,
        CardsCommand::SetExternalId {
            card_number,
            external_id,
        } => {
            set_external_id(&settings.open().await?, &card_number, &external_id).await?;
        }
    }
    Ok(Exit::Completed)
}

/// Parses `--count`: 3025 when missing or not a positive integer, 3026 above the limit.
pub fn parse_count(count: Option<&str>) -> Result<usize, ApiError> {
    let text = count.map(str::trim).unwrap_or_default();
    let invalid = || {
        ApiError::new(
            ErrorCode::CountInvalid,
            format!("count {text:?} is missing or not a positive integer"),
        )
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // All digits: anything that does not parse is far above the limit.
    match text.parse::<u64>() {
        Ok(0) => Err(invalid()),
        Ok(count) if count <= MAX_GENERATE_COUNT => Ok(count as usize),
        _ => Err(ApiError::new(
            ErrorCode::CountTooLarge,
            format!("count {text} exceeds {MAX_GENERATE_COUNT}"),
        )),
    }
}

/// Generates cards. With `--output`, the file is written and synced before
/// the cards are committed and renamed into place after: either the file is
/// delivered, or (when writing it fails) nothing is stored. Only the rename,
/// after the commit, can still fail; its message names the run and the
/// command that writes the file again.
async fn generate(settings: &Settings, args: GenerateArgs) -> Result<(), CommandError> {
    let count = parse_count(args.count.as_deref())?;
    let series_ref = match (&args.series_id, &args.series_code) {
        (Some(id), _) => SeriesRef::Id(*id),
        (None, Some(code)) => SeriesRef::Code(code),
        (None, None) => return Err(usage("--series-id or --series-code is required")),
    };
    let mut paths: Vec<(&'static str, &std::path::Path)> = Vec::new();
    if let Some(path) = &args.output {
        paths.push(("--output", path));
    }
    if let Some(path) = &args.metrics {
        paths.push(("--metrics", path));
    }
    let mut outputs = settings.check_outputs(None, &paths)?;
    let metrics_file = outputs
        .iter()
        .position(|file| file.flag == "--metrics")
        .map(|at| outputs.remove(at));
    let started = std::time::Instant::now();
    let result = generate_checked(settings, &args, count, series_ref, &outputs).await;
    if let Some(file) = &metrics_file {
        let metrics = RunMetrics {
            kind: "generate".into(),
            org_id: settings.org_id,
            run_id: result.as_ref().ok().map(|(run_id, _)| *run_id),
            records: match &result {
                Ok((_, count)) => vec![("inserted", *count as u64)],
                Err(_) => Vec::new(),
            },
            rejects_by_reason: Vec::new(),
            reject_ratio: None,
            duration: started.elapsed(),
            exit_code: match &result {
                Ok(_) => Exit::Completed.code(),
                Err(error) => error.exit().code(),
            },
            finished: std::time::SystemTime::now(),
        };
        metrics
            .write(file)
            .map_err(|e| failed(format!("cannot write the metrics {}: {e}", file.path.display())))?;
    }
    result.map(|_| ())
}

/// Generates once every output is checked; returns the run and how many cards it made.
async fn generate_checked(
    settings: &Settings,
    args: &GenerateArgs,
    count: usize,
    series_ref: SeriesRef<'_>,
    outputs: &[crate::output::OutputFile],
) -> Result<(i64, usize), CommandError> {
    let context = settings.open().await?;
    let series = context
        .store
        .find_series(context.org_id, series_ref)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidSeries,
                format!("unknown or invalid card series {series_ref}"),
            )
        })?;
    let org = context.org_config().await?;
    if org.status_labels.resolve(&args.status_label).is_none() {
        return Err(status_label_invalid(&args.status_label).into());
    }
    check_series_active(&series)?;
    let generator = match series.generator() {
        Some(generator) if series.definition.generation_enabled => generator,
        _ => {
            return Err(ApiError::new(
                ErrorCode::GenerationDisabled,
                format!("card generation is disabled for series {}", series.definition.code),
            )
            .into());
        }
    };
    let request = GenerateCards {
        series_id: series.id,
        count,
        status_label: args.status_label.clone(),
        generator,
    };
    let series_code = series.definition.code.clone();
    let mut delivered: Option<PendingOutput> = None;
    let mut deliver = |numbers: &[String]| -> std::io::Result<()> {
        let Some(file) = outputs.first() else {
            return Ok(());
        };
        let write = || -> std::io::Result<PendingOutput> {
            let mut csv = NumbersCsv::new(file.create()?)?;
            for number in numbers {
                csv.write(number, &series_code, &args.status_label)?;
            }
            let mut out = csv.into_inner()?;
            out.sync()?;
            Ok(out)
        };
        let out =
            write().map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", file.path.display())))?;
        delivered = Some(out);
        Ok(())
    };
    let generated = context
        .store
        .generate_cards(context.org_id, &request, &mut deliver)
        .await?;
    let warnings: Vec<String> = (generated.skipped > 0)
        .then(|| {
            format!(
                "{} counter value(s) skipped: their numbers were already taken by cards added by hand",
                generated.skipped
            )
        })
        .into_iter()
        .collect();
    match (&args.output, delivered) {
        (Some(path), Some(out)) => {
            out.commit().map_err(|e| {
                failed(format!(
                    "the {} cards of run {} are stored, but {} could not be put in place: {e}; \
                     write it again with: cardbatch cards export --run {} --output {}",
                    generated.numbers.len(),
                    generated.run_id,
                    path.display(),
                    generated.run_id,
                    path.display()
                ))
            })?;
            print_json(&json!({
                "count": generated.numbers.len(),
                "output": path.display().to_string(),
                "run_id": generated.run_id,
                "warnings": warnings,
                "errors": [],
            }))?;
        }
        _ => print_json(&json!({"data": generated.numbers, "warnings": warnings, "errors": []}))?,
    }
    Ok((generated.run_id, generated.numbers.len()))
}

/// `cards export --run ID`: the cards a run created, in the CSV that
/// `cards generate --output` writes, in card id (counter) order.
async fn export(settings: &Settings, run_id: i64, output: Option<PathBuf>) -> Result<(), CommandError> {
    let outputs = match &output {
        Some(path) => settings.check_outputs(None, &[("--output", path)])?,
        None => Vec::new(),
    };
    let context = settings.open().await?;
    if context.store.find_run(context.org_id, run_id).await?.is_none() {
        return Err(usage(format!("run {run_id} does not exist in org {}", context.org_id)));
    }
    let mut csv = NumbersCsv::new(Destination::new(outputs.first())?).map_err(output_failed)?;
    let mut cards = context.store.run_cards(context.org_id, run_id);
    while let Some(card) = cards.try_next().await? {
        csv.write(&card.card_number, &card.series_code, &card.status_label)
            .map_err(output_failed)?;
    }
    csv.finish().map_err(output_failed)?;
    Ok(())
}

/// The CSV of generated cards: `card_number,series_code,status_label`.
struct NumbersCsv<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> NumbersCsv<W> {
    fn new(out: W) -> std::io::Result<Self> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(["card_number", "series_code", "status_label"])?;
        Ok(NumbersCsv { writer })
    }

    fn write(&mut self, card_number: &str, series_code: &str, status_label: &str) -> std::io::Result<()> {
        Ok(self.writer.write_record([card_number, series_code, status_label])?)
    }

    fn into_inner(self) -> std::io::Result<W> {
        self.writer.into_inner().map_err(|e| e.into_error())
    }
}

impl NumbersCsv<Destination> {
    fn finish(self) -> std::io::Result<()> {
        self.into_inner()?.finish()
    }
}

fn status_label_invalid(label: &str) -> ApiError {
    ApiError::new(
        ErrorCode::StatusLabelInvalid,
        format!("status label {label:?} is not configured for the org"),
    )
}

fn check_series_active(series: &Series) -> Result<(), ApiError> {
    if series.definition.is_active {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::SeriesInactive,
            format!("card series {} is inactive", series.definition.code),
        ))
    }
}

/// A broken field rule of a single-record command, as a 400 naming the reject reason.
fn rejection_error(rejection: Rejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("{}: {}", rejection.reason, rejection.message),
    )
}

async fn add(context: &Context, body: &CardRequest) -> Result<(), CommandError> {
    let series_ref = match (&body.series_id, &body.series_code) {
        (Some(id), _) => SeriesRef::Id(*id),
        (None, Some(code)) => SeriesRef::Code(code),
        (None, None) => {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "seriesId or seriesCode is required").into());
        }
    };
    let series = context
        .store
        .find_series(context.org_id, series_ref)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::SeriesNotFound,
                format!("card series {series_ref} does not exist"),
            )
        })?;
    let card_number = body.card_number.clone().unwrap_or_default();
    check_number_fits_series("cardNumber", &card_number, &series).map_err(rejection_error)?;
    check_series_active(&series)?;
    let org = context.org_config().await?;
    let status_label = body
        .status_label
        .clone()
        .unwrap_or_else(|| DEFAULT_STATUS_LABEL.to_string());
    if org.status_labels.resolve(&status_label).is_none() {
        return Err(status_label_invalid(&status_label).into());
    }
    if let Some(external_id) = &body.card_external_id {
        org.check_external_id("cardExternalId", external_id)
            .map_err(rejection_error)?;
    }
    let status_reason = body.status_info.as_ref().and_then(|info| info.reason.clone());
    check_status_reason("statusInfo.reason", status_reason.as_deref()).map_err(rejection_error)?;
    let card = NewCard {
        series_id: series.id,
        card_number,
        external_id: body.card_external_id.clone(),
        status_label,
        status_reason,
        customer_id: body.customer_id,
        extended_fields: body.extended_fields.clone().map(Value::Object),
        custom_fields: body.custom_fields.clone().map(Value::Object),
        mapped_entity: body.mapped_entity.clone().map(Value::Object),
    };
    let card_id = context.store.add_card(context.org_id, &card).await?;
    print_json(&json!({"entity": card_id, "warnings": []}))?;
    Ok(())
}

async fn set_external_id(context: &Context, card_number: &str, external_id: &str) -> Result<(), CommandError> {
    let org = context.org_config().await?;
    org.check_external_id("cardExternalId", external_id)
        .map_err(rejection_error)?;
    let card = context
        .store
        .set_card_external_id(context.org_id, card_number, external_id)
        .await?;
    let active = org.status_labels.resolve(&card.status_label) == Some(SystemStatus::Active);
    print_json(&card_response(&card, active && card.series_is_digital))?;
    Ok(())
}

/// The seeds' `PUT /v2/card` response body.
fn card_response(card: &CardView, active_and_digital: bool) -> Value {
    let entity_id = card
        .mapped_entity
        .as_ref()
        .and_then(|entity| entity.get("entityId").or_else(|| entity.get("id")))
        .and_then(Value::as_i64);
    json!({
        "cardId": card.card_id,
        "customerId": card.customer_id,
        "cardExternalId": card.external_id,
        "cardNumber": card.card_number,
        "orgId": card.org_id,
        "entityId": entity_id,
        "transactionNotAllowed": card.transaction_not_allowed,
        "activeAndDigital": active_and_digital,
        "warnings": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_rules() {
        assert_eq!(parse_count(Some("5")), Ok(5));
        assert_eq!(parse_count(Some("100000")), Ok(100_000));
        for bad in [None, Some(""), Some("0"), Some("-3"), Some("five"), Some("2.5")] {
            assert_eq!(parse_count(bad).unwrap_err().code, ErrorCode::CountInvalid, "{bad:?}");
        }
        assert_eq!(parse_count(Some("100001")).unwrap_err().code, ErrorCode::CountTooLarge);
        assert_eq!(
            parse_count(Some("99999999999999999999999")).unwrap_err().code,
            ErrorCode::CountTooLarge
        );
    }
}
