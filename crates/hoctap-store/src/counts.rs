//! The column layout of the counts as known now (`migrations/0004_columns_and_blocks.sql`), in one
//! place: `counts_year(year, key, before, m1 … m12)` and `counts_month(month, key, d1 … d31)`.
//! Plain integer columns let PostgreSQL add a batch with integer arithmetic and sum the prefix a date
//! needs in the statement that reads it, so that one number per key comes back.

/// Month columns of a year row, day columns of a month row (a shorter month leaves the last at 0).
pub(crate) const MONTHS: usize = 12;
pub(crate) const DAYS: usize = 31;

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

/// `m1, …, m12`.
pub(crate) fn month_columns() -> String {
    names("m", MONTHS).join(", ")
}

/// `d1, …, d31`.
pub(crate) fn day_columns() -> String {
    names("d", DAYS).join(", ")
}

/// The staging columns with their types, for `CREATE TEMP TABLE`.
pub(crate) fn year_stage_columns() -> String {
    let months: Vec<String> = names("m", MONTHS).into_iter().map(|c| format!("{c} int4")).collect();
    format!("year int2, key int4, before int8, {}", months.join(", "))
}

pub(crate) fn month_stage_columns() -> String {
    let days: Vec<String> = names("d", DAYS).into_iter().map(|c| format!("{c} int4")).collect();
    format!("month date, key int4, {}", days.join(", "))
}

/// `c = x.c + EXCLUDED.c` for each column: the additive upsert.
pub(crate) fn add_excluded(columns: &str) -> String {
    columns.split(", ").map(|c| format!("{c} = x.{c} + EXCLUDED.{c}")).collect::<Vec<_>>().join(", ")
}

/// The count before a year row's year plus its first `months` months, as one int8 expression.
pub(crate) fn sum_year(months: usize) -> String {
    std::iter::once("before".to_owned()).chain(names("m", months.min(MONTHS))).collect::<Vec<_>>().join(" + ")
}

/// The first `days` days of a month row, as one int8 expression.
pub(crate) fn sum_month(days: usize) -> String {
    std::iter::once("0::int8".to_owned()).chain(names("d", days.min(DAYS))).collect::<Vec<_>>().join(" + ")
}

/// A condition true when some of `columns` is not 0.
pub(crate) fn any_nonzero(columns: &str) -> String {
    columns.split(", ").map(|c| format!("{c} <> 0")).collect::<Vec<_>>().join(" OR ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists_and_sums() {
        assert_eq!(month_columns().split(", ").count(), MONTHS);
        assert!(day_columns().ends_with("d30, d31"));
        assert_eq!(sum_year(0), "before");
        assert_eq!(sum_year(2), "before + m1 + m2");
        assert_eq!(sum_year(13), sum_year(12));
        assert_eq!(sum_month(3), "0::int8 + d1 + d2 + d3");
        assert_eq!(add_excluded("m1, m2"), "m1 = x.m1 + EXCLUDED.m1, m2 = x.m2 + EXCLUDED.m2");
        assert_eq!(any_nonzero("a, b"), "a <> 0 OR b <> 0");
        assert!(year_stage_columns().ends_with("m12 int4"));
        assert!(month_stage_columns().starts_with("month date, key int4, d1 int4"));
    }
}
