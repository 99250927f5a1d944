//! A partner's fields mapped onto one of our record kinds.
//!
//! A mapping turns a source row (an exchange table's columns, or one record
//! of an HTTP feed) into the kind's *canonical* record: the field names and
//! codes of the contract we defined for that kind (`docs/partners.md`), e.g.
//! `ywh`, `sqlx`, `sjsj` for a registry case. The canonical record then goes
//! through the same validation as every feed of that kind
//! ([`crate::registry::parse_case`], [`crate::lenders::parse_bank_item`] …),
//! so findings, quarantine, replay and the KPIs are shared.
//!
//! Each target field is one [`FieldRule`]: a source column or path, or a
//! constant, or an expression (MiniJinja's expression language, sandboxed,
//! no I/O), then optionally a time format and zone, a code table, a scale.
//! A value that cannot be converted is a flaw on the record when the field is
//! optional (the record is kept, and the kind's validator treats the value as
//! it treats any malformed field) and quarantines the row when the field is
//! one the record cannot exist without. A code the code table lacks
//! is likewise a finding, and the record is kept.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store::findings::Flaw;

use crate::poll::Record;
use crate::registry::RowError;

/// The record kinds a partner can deliver by configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A registration case (the registry's case contract).
    Case,
    /// A QC finding.
    QcFinding,
    /// A satisfaction evaluation.
    Evaluation,
    /// A bank's mortgage application.
    BankLoan,
    /// A provident-fund loan.
    ProvidentFundLoan,
}

/// What a canonical field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    Text,
    /// A code (mapped through a code table when one is named).
    Code,
    /// A whole number.
    Integer,
    /// An instant (written as ISO 8601 with +08:00, or `yyyyMMddHHmmss` for the provident fund).
    Time,
    /// An amount in yuan, two decimals at most.
    Yuan,
}

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Code => "code",
            Self::Integer => "integer",
            Self::Time => "time",
            Self::Yuan => "amount in yuan",
        }
    }
}

/// A canonical field of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name in the kind's contract (a path: `sqr[0].zjh`, `borrower.idNo`).
    pub name: &'static str,
    /// What it holds.
    pub ty: FieldType,
    /// Whether a record cannot exist without it (its absence quarantines the row).
    pub required: bool,
    /// What it is, in Chinese, for `partner map` and the docs.
    pub label: &'static str,
}

const fn t(name: &'static str, ty: FieldType, required: bool, label: &'static str) -> Target {
    Target { name, ty, required, label }
}

use FieldType::{Code, Integer, Text, Time, Yuan};

const CASE: &[Target] = &[
    t("ywh", Text, true, "业务号"),
    t("sqlx", Code, true, "申请类型（业务类型代码）"),
    t("sqfs", Code, true, "申请方式（渠道 1-4）"),
    t("sjsj", Time, true, "收件时间"),
    t("gxsj", Time, true, "更新时间（版本）"),
    t("zt", Code, true, "状态（SL/BZ/DB/FZ/GD/BYSL/CH）"),
    t("lzfs", Code, false, "领证方式（1-3）"),
    t("sqrlx", Code, false, "申请人类型（1-7）"),
    t("sqr[0].xm", Text, false, "申请人姓名"),
    t("sqr[0].zjzl", Code, false, "证件种类（1 身份证 2 信用代码）"),
    t("sqr[0].zjh", Text, false, "证件号"),
    t("bdcdyh", Text, false, "不动产单元号"),
    t("xzqdm", Text, false, "行政区代码"),
    t("slsj", Time, false, "受理时间"),
    t("hdsj", Time, false, "核定时间"),
    t("dbsj", Time, false, "登簿时间"),
    t("szsj", Time, false, "缮证时间"),
    t("fzsj", Time, false, "发证时间"),
    t("gdsj", Time, false, "归档时间"),
    t("bzcs", Integer, false, "补正次数"),
    t("blr", Text, false, "办理人"),
    t("htbah", Text, false, "合同备案号"),
    t("dkbh", Text, false, "贷款编号"),
];

const QC_FINDING: &[Target] = &[
    t("id", Text, true, "差错编号"),
    t("ywh", Text, true, "业务号"),
    t("cclx", Code, true, "差错类型"),
    t("ccdj", Integer, true, "差错等级（1-3）"),
    t("zrks", Text, true, "责任科室"),
    t("ms", Text, false, "描述"),
    t("jcsj", Time, true, "检查时间"),
    t("zgsj", Time, false, "整改时间"),
    t("gxsj", Time, true, "更新时间（版本）"),
];

const EVALUATION: &[Target] = &[
    t("id", Text, true, "评价编号"),
    t("ywh", Text, true, "业务号"),
    t("pjdj", Integer, true, "评价等级（1 非常满意 - 5 非常不满意）"),
    t("pjqd", Code, true, "评价渠道（online/onsite）"),
    t("pjnr", Text, false, "评价内容"),
    t("pjsj", Time, true, "评价时间"),
    t("zgsj", Time, false, "整改时间"),
    t("gxsj", Time, true, "更新时间（版本）"),
];

const BANK_LOAN: &[Target] = &[
    t("applicationId", Text, true, "申请编号"),
    t("status", Code, true, "状态（SUBMITTED/ACCEPTED/REGISTERED/REJECTED/WITHDRAWN）"),
    t("product", Code, true, "产品（PRESALE_NOTICE_MORTGAGE/MORTGAGE/RELEASE）"),
    t("borrower.name", Text, true, "借款人姓名"),
    t("borrower.idNo", Text, true, "借款人证件号"),
    t("propertyUnitNo", Text, true, "不动产单元号"),
    t("loanAmount", Yuan, true, "贷款金额（元）"),
    t("submittedAt", Time, true, "申请时间"),
    t("updatedAt", Time, true, "更新时间（版本）"),
    t("registryCaseNo", Text, false, "登记业务号"),
];

const PROVIDENT_FUND_LOAN: &[Target] = &[
    t("DKBH", Text, true, "贷款编号"),
    t("DKLX", Code, true, "贷款类型（1/2）"),
    t("ZT", Code, true, "状态（1 已提交 2 已登记 3 已驳回）"),
    t("JKRXM", Text, true, "借款人姓名"),
    t("JKRZJH", Text, true, "借款人证件号"),
    t("BDCDYH", Text, true, "不动产单元号"),
    t("DKJE", Yuan, true, "贷款金额（元）"),
    t("SQSJ", Time, true, "申请时间"),
    t("GXSJ", Time, true, "更新时间（版本）"),
    t("YWH", Text, false, "登记业务号"),
];

impl RecordKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [Self::Case, Self::QcFinding, Self::Evaluation, Self::BankLoan, Self::ProvidentFundLoan];

    /// The kind's canonical fields.
    pub fn targets(self) -> &'static [Target] {
        match self {
            Self::Case => CASE,
            Self::QcFinding => QC_FINDING,
            Self::Evaluation => EVALUATION,
            Self::BankLoan => BANK_LOAN,
            Self::ProvidentFundLoan => PROVIDENT_FUND_LOAN,
        }
    }

    /// Its name in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Case => "case",
            Self::QcFinding => "qc_finding",
            Self::Evaluation => "evaluation",
            Self::BankLoan => "bank_loan",
            Self::ProvidentFundLoan => "provident_fund_loan",
        }
    }

    /// Its name in Chinese.
    pub fn label(self) -> &'static str {
        match self {
            Self::Case => "登记业务",
            Self::QcFinding => "质检差错",
            Self::Evaluation => "满意度评价",
            Self::BankLoan => "银行抵押贷款申请",
            Self::ProvidentFundLoan => "公积金贷款",
        }
    }

    /// The store source its records carry whatever the configuration says
    /// (their validators fix it); `None` for bank loans, which carry their bank's.
    pub fn fixed_source(self) -> Option<&'static str> {
        match self {
            Self::Case => Some(crate::registry::SOURCE),
            Self::QcFinding => Some(crate::registry::QC_SOURCE),
            Self::Evaluation => Some(crate::registry::EVALUATION_SOURCE),
            Self::ProvidentFundLoan => Some(crate::lenders::PROVIDENT_FUND_SOURCE),
            Self::BankLoan => None,
        }
    }

    /// The canonical field that is the record's version.
    pub fn version_field(self) -> &'static str {
        match self {
            Self::Case | Self::QcFinding | Self::Evaluation => "gxsj",
            Self::BankLoan => "updatedAt",
            Self::ProvidentFundLoan => "GXSJ",
        }
    }

    /// The canonical field that is the record's key.
    pub fn key_field(self) -> &'static str {
        match self {
            Self::Case => "ywh",
            Self::QcFinding | Self::Evaluation => "id",
            Self::BankLoan => "applicationId",
            Self::ProvidentFundLoan => "DKBH",
        }
    }

    fn target(self, name: &str) -> Option<&'static Target> {
        self.targets().iter().find(|t| t.name == name)
    }
}

/// How one target field is filled. In TOML either a column name
/// (`ywh = "YWH"`) or a table (`sjsj = { from = "SJSJ", format = "%Y%m%d%H%M%S" }`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum FieldSpec {
    /// A source column or path, taken as it is.
    From(String),
    /// The full rule.
    Rule(FieldRule),
}

/// The full rule for one target field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The source column, or a path into a JSON record (`borrower.idNo`, `items[0].no`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A constant instead of a source value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<toml::Value>,
    /// A MiniJinja expression over the row's columns (and `value`, the
    /// `from` value): `DKJE | float * 10000`, `"1" if QLRLX == "个人" else "2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// A time's format (chrono's `strftime` syntax, `epoch_seconds` or
    /// `epoch_millis`); without one, ISO 8601 and the usual database forms are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The zone of a time without one: `+08:00` (the default), `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// A code table by name (`[partners.X.codes.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<String>,
    /// A factor for amounts: `10000` reads 万元 as yuan, `0.01` reads fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<String>,
    /// Used when the source value is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl FieldSpec {
    fn rule(&self) -> std::borrow::Cow<'_, FieldRule> {
        match self {
            Self::From(column) => {
                std::borrow::Cow::Owned(FieldRule { from: Some(column.clone()), ..FieldRule::default() })
            }
            Self::Rule(rule) => std::borrow::Cow::Borrowed(rule),
        }
    }
}

/// A problem with a mapping, found before any row is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    /// The field (or code table) it is about.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// A checked mapping of one partner onto one kind.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The kind it produces.
    pub kind: RecordKind,
    /// The store source its records carry (`bank:ID`, `registry` …).
    pub source: String,
    fields: Vec<(&'static Target, FieldRule, Option<Scale>, Option<FixedOffset>)>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

/// The source columns and paths a mapping reads (for a table's SELECT).
pub fn referenced_columns(fields: &BTreeMap<String, FieldSpec>) -> BTreeSet<String> {
    let env = expressions();
    let mut out = BTreeSet::new();
    for spec in fields.values() {
        let rule = spec.rule();
        if let Some(from) = &rule.from {
            out.insert(path_head(from).to_owned());
        }
        if let Some(expr) = &rule.expr
            && let Ok(compiled) = env.compile_expression(expr)
        {
            out.extend(compiled.undeclared_variables(false).into_iter().filter(|v| v != "value"));
        }
    }
    out
}

fn path_head(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

fn expressions() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // A runaway expression is stopped, not a hung connector.
    env.set_fuel(Some(10_000));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

impl Mapping {
    /// Checks `fields` and `codes` against `kind`: unknown target fields,
    /// required fields left unmapped, a field with no source or two, a
    /// constant of the wrong type, a format, zone, scale or expression that
    /// does not parse, a code table that is not there. Every problem is
    /// returned, not only the first.
    pub fn new(
        kind: RecordKind,
        source: &str,
        fields: &BTreeMap<String, FieldSpec>,
        codes: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Self, Vec<MappingProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, text: String| {
            problems.push(MappingProblem { field: field.to_owned(), problem: text });
        };
        let env = expressions();
        let mut checked = Vec::new();
        for (name, spec) in fields {
            let Some(target) = kind.target(name) else {
                let known: Vec<&str> = kind.targets().iter().map(|t| t.name).collect();
                problem(name, format!("is not a field of {} ({})", kind.name(), known.join(", ")));
                continue;
            };
            let rule = spec.rule().into_owned();
            let sources = usize::from(rule.from.is_some()) + usize::from(rule.value.is_some());
            if sources == 0 && rule.expr.is_none() {
                problem(name, "names no source: give from, value or expr".into());
            }
            if sources > 1 {
                problem(name, "has both from and value: give one".into());
            }
            if let Some(constant) = &rule.value {
                let fits = match (target.ty, constant) {
                    (Integer, toml::Value::Integer(_)) => true,
                    (Integer, toml::Value::String(s)) => s.parse::<i64>().is_ok(),
                    (Integer, _) => false,
                    (Yuan, toml::Value::Integer(_) | toml::Value::Float(_)) => true,
                    (Yuan, toml::Value::String(s)) => Decimal::parse(s).is_some(),
                    (Time, toml::Value::Datetime(_) | toml::Value::String(_)) => true,
                    (Text | Code, toml::Value::String(_) | toml::Value::Integer(_)) => true,
                    _ => false,
                };
                if !fits {
                    problem(name, format!("the constant {constant} is not a {}", target.ty.name()));
                }
            }
            if let Some(expr) = &rule.expr
                && let Err(e) = env.compile_expression(expr)
            {
                problem(name, format!("expression {expr:?} does not parse: {e}"));
            }
            if rule.format.is_some() && target.ty != Time {
                problem(name, format!("has a time format but is a {}", target.ty.name()));
            }
            let zone = match &rule.time_zone {
                None => None,
                Some(zone) => match parse_zone(zone) {
                    Some(z) => Some(z),
                    None => {
                        problem(name, format!("time_zone {zone:?} is not UTC or an offset such as +08:00"));
                        None
                    }
                },
            };
            if let Some(table) = &rule.codes {
                if !codes.contains_key(table) {
                    problem(name, format!("code table {table:?} is not defined under codes"));
                }
                if !matches!(target.ty, Code | Text) {
                    problem(name, format!("has a code table but is a {}", target.ty.name()));
                }
            }
            let scale = match &rule.scale {
                None => None,
                Some(text) => match (Decimal::parse(text), target.ty) {
                    (Some(d), Yuan | Integer) => Some(Scale(d)),
                    (None, _) => {
                        problem(name, format!("scale {text:?} is not a number"));
                        None
                    }
                    (Some(_), ty) => {
                        problem(name, format!("has a scale but is a {}", ty.name()));
                        None
                    }
                },
            };
            checked.push((target, rule, scale, zone));
        }
        for target in kind.targets().iter().filter(|t| t.required) {
            if !fields.contains_key(target.name) {
                problem(target.name, format!("is required for {} ({}) but not mapped", kind.name(), target.label));
            }
        }
        if problems.is_empty() {
            Ok(Self { kind, source: source.to_owned(), fields: checked, codes: codes.clone() })
        } else {
            Err(problems)
        }
    }

    /// The canonical record of `row` (an object of columns or a JSON record),
    /// with the flaws met on the way, or why the row cannot be a record.
    pub fn canonical(&self, row: &Value) -> Result<(Value, Vec<Flaw>), RowError> {
        let mut out = Value::Object(Map::new());
        let mut flaws = Vec::new();
        let env = if self.fields.iter().any(|(_, rule, ..)| rule.expr.is_some()) { Some(expressions()) } else { None };
        for (target, rule, scale, zone) in &self.fields {
            let raw = self
                .source_value(row, rule, env.as_ref())
                .map_err(|e| ("malformed", format!("{}: {e}", target.name)))?;
            let raw = match raw {
                Some(v) => Some(v),
                None => rule.default.clone().map(Value::String),
            };
            let Some(raw) = raw else { continue };
            match self.convert(target, rule, *scale, *zone, &raw) {
                Ok(value) => set_path(&mut out, target.name, value),
                Err((rule_name, detail)) => {
                    if target.required {
                        return Err((rule_name, detail));
                    }
                    flaws.push(Flaw {
                        field: target.name.to_owned(),
                        rule: rule_name,
                        detail,
                        value_masked: mask_if_identifying(target.name, &value_text(&raw)),
                    });
                    // A value that does not convert goes on as it came, so the
                    // kind's validator treats it as it treats any malformed
                    // field (a correction count it cannot read leaves
                    // first-time-right undetermined, not zero). A partner's
                    // code the table lacks does not: it could pass for one of ours.
                    if rule_name != "unknown_code" {
                        set_path(&mut out, target.name, raw);
                    }
                }
            }
        }
        Ok((out, flaws))
    }

    /// The record of `row`: its canonical form validated as every record of the kind is.
    pub fn record(&self, row: &Value) -> Result<Record, RowError> {
        let (canonical, mut flaws) = self.canonical(row)?;
        let record = validate(self.kind, &self.source, &canonical)?;
        // The mapping's own findings (a code the table lacks) stand over the
        // validator's for the same field: they say where the value came from.
        Ok(with_flaws(record, |found| {
            found.retain(|f| !flaws.iter().any(|m| m.field == f.field));
            found.append(&mut flaws);
        }))
    }

    /// The code tables (for `partner check`'s coverage).
    pub fn code_tables(&self) -> impl Iterator<Item = (&str, &str, &BTreeMap<String, String>)> {
        self.fields.iter().filter_map(|(target, rule, ..)| {
            let table = rule.codes.as_deref()?;
            Some((target.name, rule.from.as_deref()?, self.codes.get(table)?))
        })
    }

    fn source_value(
        &self,
        row: &Value,
        rule: &FieldRule,
        env: Option<&minijinja::Environment<'static>>,
    ) -> Result<Option<Value>, String> {
        let from = rule.from.as_deref().and_then(|path| get_path(row, path)).filter(|v| !is_empty(v)).cloned();
        if let Some(constant) = &rule.value {
            return Ok(Some(toml_to_json(constant)));
        }
        let Some(expr) = &rule.expr else { return Ok(from) };
        let env = env.ok_or("no expression environment")?;
        let compiled = env.compile_expression(expr).map_err(|e| format!("expression {expr:?}: {e}"))?;
        let mut context = match row {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        context.insert("value".into(), from.unwrap_or(Value::Null));
        let result = compiled.eval(Value::Object(context)).map_err(|e| format!("expression {expr:?}: {e}"))?;
        if result.is_undefined() || result.is_none() {
            return Ok(None);
        }
        let value = serde_json::to_value(&result).map_err(|e| format!("expression {expr:?}: {e}"))?;
        Ok(Some(value).filter(|v| !is_empty(v)))
    }

    fn convert(
        &self,
        target: &Target,
        rule: &FieldRule,
        scale: Option<Scale>,
        zone: Option<FixedOffset>,
        raw: &Value,
    ) -> Result<Value, RowError> {
        let source = rule.from.as_deref().unwrap_or(target.name);
        let text = value_text(raw);
        let bad = |what: &str| ("malformed", format!("{} ({source}) {text:?} is not {what}", target.name));
        match target.ty {
            Text => Ok(Value::String(text.trim().to_owned())),
            Code => {
                let code = text.trim();
                match rule.codes.as_deref().and_then(|name| self.codes.get(name).map(|t| (name, t))) {
                    None => Ok(Value::String(code.to_owned())),
                    Some((name, table)) => match table.get(code) {
                        Some(ours) => Ok(Value::String(ours.clone())),
                        None => Err((
                            "unknown_code",
                            format!("{} ({source}) {code:?} is not in code table {name}", target.name),
                        )),
                    },
                }
            }
            Integer => {
                let number = match raw {
                    Value::Number(n) if n.is_i64() => Decimal { digits: i128::from(n.as_i64().unwrap_or(0)), exp: 0 },
                    _ => Decimal::parse(text.trim()).ok_or_else(|| bad("a whole number"))?,
                };
                let number = match scale {
                    Some(Scale(s)) => number.times(s),
                    None => number,
                };
                number.whole().map(Value::from).ok_or_else(|| bad("a whole number"))
            }
            Yuan => {
                let amount = Decimal::parse(text.trim()).ok_or_else(|| bad("an amount"))?;
                let amount = match scale {
                    Some(Scale(s)) => amount.times(s),
                    None => amount,
                };
                Ok(Value::String(amount.yuan()))
            }
            Time => {
                let zone = zone.unwrap_or_else(china);
                let at = parse_time(raw, rule.format.as_deref(), zone).ok_or_else(|| {
                    bad(&match &rule.format {
                        Some(f) => format!("a time ({f})"),
                        None => "a time".to_owned(),
                    })
                })?;
                Ok(Value::String(match self.kind {
                    RecordKind::ProvidentFundLoan => at.with_timezone(&china()).format("%Y%m%d%H%M%S").to_string(),
                    _ => at.with_timezone(&china()).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                }))
            }
        }
    }
}

/// The kind's validator over a canonical record.
pub fn validate(kind: RecordKind, source: &str, canonical: &Value) -> Result<Record, RowError> {
    match kind {
        RecordKind::Case => crate::registry::parse_case(canonical).map(|(c, f)| Record::Case(Box::new(c), f)),
        RecordKind::QcFinding => crate::registry::parse_qc_finding(canonical).map(|(q, f)| Record::Qc(q, f)),
        RecordKind::Evaluation => crate::registry::parse_evaluation(canonical).map(|(e, f)| Record::Evaluation(e, f)),
        RecordKind::BankLoan => crate::lenders::parse_bank_item(source, canonical).map(|(l, f)| Record::Loan(l, f)),
        RecordKind::ProvidentFundLoan => {
            let fields: crate::xmlrows::Fields = match canonical {
                Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), value_text(v))).collect(),
                _ => crate::xmlrows::Fields::new(),
            };
            crate::lenders::parse_gjj_loan(&fields).map(|(l, f)| Record::Loan(l, f))
        }
    }
}

fn with_flaws(record: Record, edit: impl FnOnce(&mut Vec<Flaw>)) -> Record {
    match record {
        Record::Case(c, mut f) => {
            edit(&mut f);
            Record::Case(c, f)
        }
        Record::Qc(q, mut f) => {
            edit(&mut f);
            Record::Qc(q, f)
        }
        Record::Evaluation(e, mut f) => {
            edit(&mut f);
            Record::Evaluation(e, f)
        }
        Record::Filing(x, mut f) => {
            edit(&mut f);
            Record::Filing(x, f)
        }
        Record::Loan(l, mut f) => {
            edit(&mut f);
            Record::Loan(l, f)
        }
        court @ Record::Court(_) => court,
    }
}

/// A record the partner deleted, ended as the store keeps such records: a
/// case withdrawn (`CH`), a loan withdrawn, at the delete's version. `None`
/// for a kind that has no ended state (QC findings, evaluations).
pub fn ended(record: Record) -> Option<Record> {
    match record {
        Record::Case(mut case, flaws) => {
            case.status = domain::CaseStatus::Withdrawn;
            case.closed_at = Some(case.source_updated_at);
            Some(Record::Case(case, flaws))
        }
        Record::Loan(mut loan, flaws) => {
            loan.status = "withdrawn".into();
            Some(Record::Loan(loan, flaws))
        }
        Record::Filing(mut filing, flaws) => {
            filing.status = "cancelled".into();
            Some(Record::Filing(filing, flaws))
        }
        Record::Qc(..) | Record::Evaluation(..) | Record::Court(_) => None,
    }
}

/// A value as text: strings without their quotes, null as empty.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn mask_if_identifying(field: &str, text: &str) -> String {
    let lower = field.to_ascii_lowercase();
    if lower.contains("zjh") || lower.contains("idno") { domain::ident::mask_id_number(text) } else { text.to_owned() }
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::String(f.to_string()),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        other => Value::String(other.to_string()),
    }
}

/// One step of a path: a field, then optional indexes.
fn steps(path: &str) -> Vec<(String, Vec<usize>)> {
    path.split('.')
        .map(|part| {
            let mut pieces = part.split('[');
            let name = pieces.next().unwrap_or_default().to_owned();
            let indexes = pieces.filter_map(|p| p.trim_end_matches(']').parse().ok()).collect();
            (name, indexes)
        })
        .collect()
}

/// The value at `path` (`a.b[0].c`) in `value`.
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = value;
    for (name, indexes) in steps(path) {
        if !name.is_empty() {
            at = at.get(&name)?;
        }
        for i in indexes {
            at = at.get(i)?;
        }
    }
    Some(at)
}

fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut at = root;
    let steps = steps(path);
    let last = steps.len().saturating_sub(1);
    for (n, (name, indexes)) in steps.into_iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        let slot = map.entry(name).or_insert(Value::Null);
        let mut slot = slot;
        for i in indexes {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else { return };
            while items.len() <= i {
                items.push(Value::Null);
            }
            slot = &mut items[i];
        }
        if n == last {
            *slot = value;
            return;
        }
        at = slot;
    }
}

/// China Standard Time.
fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
}

/// A zone as configuration writes it: `UTC`, `+08:00`, `Asia/Shanghai`.
pub fn parse_zone(text: &str) -> Option<FixedOffset> {
    match text.trim() {
        "UTC" | "Z" | "utc" => FixedOffset::east_opt(0),
        "Asia/Shanghai" | "Asia/Chongqing" | "PRC" => Some(china()),
        other => {
            let (sign, rest) = match other.as_bytes().first()? {
                b'+' => (1, &other[1..]),
                b'-' => (-1, &other[1..]),
                _ => return None,
            };
            let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
            let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
            FixedOffset::east_opt(sign * seconds)
        }
    }
}

/// The forms a time takes in databases and feeds when no format is given.
const TIME_FORMS: &[&str] = &["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S"];

/// Reads `raw` as an instant: with `format` if given, else ISO 8601 (with or
/// without its offset) and the usual database forms; a time without a zone is in `zone`.
pub fn parse_time(raw: &Value, format: Option<&str>, zone: FixedOffset) -> Option<DateTime<Utc>> {
    let text = value_text(raw);
    let text = text.trim();
    let local = |naive: NaiveDateTime| zone.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc));
    match format {
        Some("epoch_seconds") => DateTime::from_timestamp(text.parse().ok()?, 0),
        Some("epoch_millis") => DateTime::from_timestamp_millis(text.parse().ok()?),
        Some(format) => NaiveDateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDate::parse_from_str(text, format).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .and_then(local)
            .or_else(|| DateTime::parse_from_str(text, format).ok().map(|t| t.with_timezone(&Utc))),
        None => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| TIME_FORMS.iter().find_map(|f| NaiveDateTime::parse_from_str(text, f).ok()).and_then(local))
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).and_then(local)
            }),
    }
}

/// An exact decimal: `digits × 10^-exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    digits: i128,
    exp: u32,
}

/// A configured scale factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scale(Decimal);

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim().replace(',', "");
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, text.trim_start_matches('+').to_owned()),
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
            || fraction.len() > 18
        {
            return None;
        }
        let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some(Self { digits: if negative { -digits } else { digits }, exp: u32::try_from(fraction.len()).ok()? })
    }

    fn times(self, other: Self) -> Self {
        Self { digits: self.digits.saturating_mul(other.digits), exp: self.exp + other.exp }
    }

    fn whole(self) -> Option<i64> {
        let unit = 10i128.checked_pow(self.exp)?;
        (self.digits % unit == 0).then(|| i64::try_from(self.digits / unit).ok()).flatten()
    }

    /// Yuan with two decimals, rounded half away from zero (fen are the smallest unit).
    fn yuan(self) -> String {
        let fen = if self.exp <= 2 {
            self.digits.saturating_mul(10i128.pow(2 - self.exp))
        } else {
            let unit = 10i128.pow((self.exp - 2).min(30));
            let (q, r) = (self.digits / unit, self.digits % unit);
            if r.abs() * 2 >= unit { q + r.signum() } else { q }
        };
        let sign = if fen < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> (BTreeMap<String, FieldSpec>, BTreeMap<String, BTreeMap<String, String>>) {
        #[derive(Deserialize)]
        struct Both {
            fields: BTreeMap<String, FieldSpec>,
            #[serde(default)]
            codes: BTreeMap<String, BTreeMap<String, String>>,
        }
        let both: Both = toml::from_str(toml_text).expect("toml");
        (both.fields, both.codes)
    }

    const GTMAP_LOAN: &str = r#"
        [fields]
        DKBH = "DKBH"
        DKLX = { value = "1" }
        ZT = { from = "ZT", codes = "status" }
        JKRXM = "QLRMC"
        JKRZJH = "ZJH"
        BDCDYH = "BDCDYH"
        DKJE = { from = "DKJE_WY", scale = "10000" }
        SQSJ = { from = "SQSJ", format = "%Y-%m-%d" }
        GXSJ = "CD_TIME"
        [codes.status]
        "01" = "1"
        "02" = "2"
    "#;

    #[test]
    fn a_mapping_fills_the_canonical_record_with_dates_codes_and_units() {
        let (fields, codes) = spec(GTMAP_LOAN);
        let mapping = Mapping::new(RecordKind::ProvidentFundLoan, "provident_fund", &fields, &codes).expect("valid");
        let row = serde_json::json!({
            "DKBH": "GJJ-1", "ZT": "02", "QLRMC": "张三", "ZJH": "11010519491231002X",
            "BDCDYH": "430405001001GB00001F00010001", "DKJE_WY": "35.5", "SQSJ": "2024-10-08",
            "CD_TIME": "2024-10-09 10:11:12.5"
        });
        let (canonical, flaws) = mapping.canonical(&row).expect("mapped");
        assert!(flaws.is_empty(), "{flaws:?}");
        assert_eq!(canonical["DKJE"], "355000.00");
        assert_eq!(canonical["ZT"], "2");
        assert_eq!(canonical["SQSJ"], "20241008000000");
        assert_eq!(canonical["GXSJ"], "20241009101112");
        assert_eq!(canonical["DKLX"], "1");
    }

    #[test]
    fn a_code_the_table_lacks_is_kept_as_a_finding_on_an_optional_field_and_quarantines_a_required_one() {
        let (fields, codes) = spec(
            r#"
            [fields]
            ywh = "YWH"
            sqlx = { from = "DJLX", codes = "types" }
            sqfs = { value = "1" }
            sjsj = "SJSJ"
            gxsj = "CD_TIME"
            zt = { value = "SL" }
            lzfs = { from = "LZFS", codes = "delivery" }
            [codes.types]
            "200" = "2002"
            [codes.delivery]
            "A" = "1"
        "#,
        );
        let mapping = Mapping::new(RecordKind::Case, "registry", &fields, &codes).expect("valid");
        let row = serde_json::json!({"YWH": "Y1", "DJLX": "200", "SJSJ": "2024-10-08 09:00:00", "CD_TIME": "2024-10-08 09:00:00", "LZFS": "Z"});
        let Record::Case(case, flaws) = mapping.record(&row).expect("kept") else { panic!("a case") };
        assert_eq!(case.external_id, "Y1");
        let lzfs: Vec<_> = flaws.iter().filter(|f| f.field == "lzfs").collect();
        assert_eq!(lzfs.len(), 1, "{flaws:?}");
        assert!(lzfs[0].detail.contains("code table delivery"), "{flaws:?}");
        let bad = serde_json::json!({"YWH": "Y2", "DJLX": "999", "SJSJ": "2024-10-08 09:00:00", "CD_TIME": "2024-10-08 09:00:00"});
        let (code, reason) = mapping.record(&bad).expect_err("quarantined");
        assert_eq!(code, "unknown_code");
        assert!(reason.contains("DJLX") && reason.contains("types"), "{reason}");
    }

    #[test]
    fn a_mapping_is_checked_before_any_row() {
        let (fields, codes) = spec(
            r#"
            [fields]
            ywh = "YWH"
            sqlxx = "DJLX"
            bzcs = { value = "many" }
            sjsj = { from = "SJSJ", time_zone = "Mars" }
            gxsj = { expr = "CD_TIME |" }
            zt = { from = "ZT", codes = "nowhere" }
        "#,
        );
        let problems = Mapping::new(RecordKind::Case, "registry", &fields, &codes).expect_err("problems");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        for expected in [
            "sqlxx: is not a field of case",
            "bzcs: the constant",
            "sjsj: time_zone",
            "gxsj: expression",
            "zt: code table",
            "sqlx: is required",
            "sqfs: is required",
        ] {
            assert!(all.contains(expected), "{expected} missing from:\n{all}");
        }
    }

    #[test]
    fn expressions_see_the_row_and_its_value() {
        let (fields, codes) = spec(
            r#"
            [fields]
            applicationId = { expr = "'L-' ~ SQBH" }
            status = { from = "ZT", expr = "'REGISTERED' if value == '9' else 'SUBMITTED'" }
            product = { value = "MORTGAGE" }
            "borrower.name" = "XM"
            "borrower.idNo" = "ZJH"
            propertyUnitNo = "DYH"
            loanAmount = { from = "JE_FEN", scale = "0.01" }
            submittedAt = { from = "SQSJ", format = "epoch_seconds" }
            updatedAt = { from = "GXSJ", time_zone = "UTC" }
        "#,
        );
        let mapping = Mapping::new(RecordKind::BankLoan, "bank:test", &fields, &codes).expect("valid");
        let row = serde_json::json!({"SQBH": "7", "ZT": "9", "XM": "李四", "ZJH": "110105194912310021", "DYH": "430405001001GB00001F00010001",
            "JE_FEN": 123456, "SQSJ": "1728350000", "GXSJ": "2024-10-08 01:00:00"});
        let (canonical, _) = mapping.canonical(&row).expect("mapped");
        assert_eq!(canonical["applicationId"], "L-7");
        assert_eq!(canonical["status"], "REGISTERED");
        assert_eq!(canonical["loanAmount"], "1234.56");
        assert_eq!(canonical["borrower"]["name"], "李四");
        assert_eq!(canonical["updatedAt"], "2024-10-08T09:00:00+08:00");
        // The check character is wrong: the loan is kept, flagged, masked.
        let Record::Loan(loan, flaws) = mapping.record(&row).expect("kept") else { panic!("a loan") };
        assert_eq!(flaws.len(), 1, "{flaws:?}");
        assert_eq!(flaws[0].field, "borrower.idNo");
        assert_ne!(loan.borrower_id_no, "110105194912310021");
    }

    #[test]
    fn decimals_are_exact() {
        let d = |s| Decimal::parse(s).expect("decimal");
        assert_eq!(d("35.5").times(d("10000")).yuan(), "355000.00");
        assert_eq!(d("1.005").yuan(), "1.01");
        assert_eq!(d("-2.5").yuan(), "-2.50");
        assert_eq!(d("12").times(d("0.01")).yuan(), "0.12");
        assert_eq!(d("3.0").whole(), Some(3));
        assert_eq!(d("3.5").whole(), None);
        assert!(Decimal::parse("1e5").is_none());
    }
}
