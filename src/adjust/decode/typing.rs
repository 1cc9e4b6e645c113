//! Typing one sent text for its placeholder's column type.

use std::borrow::Cow;

use super::*;
use crate::adjust::value;

impl Ty {
    /// Types the text sent for a placeholder of this type. `Ok` with a problem: kept as sent but
    /// flagged (JSON that is not valid, parameters that are not an object). `Err`: the text does
    /// not parse; the column is NULL and the raw pair goes to `extra`.
    #[inline]
    pub fn parse<'a>(
        self,
        val: impl Into<Cow<'a, str>>,
    ) -> Result<(Value<'a>, Option<ProblemKind>), (ProblemKind, Cow<'a, str>)> {
        let val = val.into();
        let bad = |kind| move |val| (kind, val);
        match self {
            Ty::Str | Ty::LowCard => Ok((Value::Text(val), None)),
            Ty::Json => {
                let flaw = (!value::is_json(&val)).then_some(ProblemKind::BadJson);
                Ok((Value::Text(val), flaw))
            }
            Ty::Params => {
                let pairs = value::parse_params(&val);
                let flaw = pairs.is_none().then_some(ProblemKind::BadParams);
                Ok((
                    Value::Params(Box::new((val, pairs.unwrap_or_default()))),
                    flaw,
                ))
            }
            Ty::Time => match value::parse_time(&val) {
                Some(t) => Ok((Value::Time(t), None)),
                None => Err(bad(ProblemKind::BadTime)(val)),
            },
            Ty::TimeMs => match value::parse_time_ms(&val) {
                Some(t) => Ok((Value::TimeMs(t), None)),
                None => Err(bad(ProblemKind::BadTime)(val)),
            },
            Ty::Flag => match value::parse_flag(&val) {
                Some(f) => Ok((Value::Flag(f), None)),
                None => Err(bad(ProblemKind::BadFlag)(val)),
            },
            Ty::Int => match value::parse_int(&val) {
                Some(i) => Ok((Value::Int(i), None)),
                None => Err(bad(ProblemKind::BadNumber)(val)),
            },
            Ty::Float => match value::parse_float(&val) {
                Some(f) => Ok((Value::Float(f), None)),
                None => Err(bad(ProblemKind::BadNumber)(val)),
            },
        }
    }
}
