//! Stripe amounts, which arrive as integers in the currency's minor unit.

/// Currencies Stripe treats as having no minor unit (an amount of 500 JPY is ¥500).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Currencies with a three-digit minor unit (an amount of 5120 BHD is 5.120 BHD).
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Symbols that name one currency unambiguously; all others are shown by ISO code, because
/// "$" alone would not tell CAD from AUD from USD.
const SYMBOLS: &[(&str, &str)] = &[
    ("USD", "$"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("JPY", "¥"),
    ("INR", "₹"),
    ("KRW", "₩"),
    ("NGN", "₦"),
    ("ILS", "₪"),
    ("VND", "₫"),
    ("UAH", "₴"),
    ("PHP", "₱"),
    ("TRY", "₺"),
];

/// Formats `minor` units of `currency` (Stripe's lower-case ISO 4217 code) for a person:
/// `$29.99`, `¥1,000`, `1.250 BHD`, `29.99 CHF`. A code that is not three ASCII letters is shown
/// as the bare number of minor units, since its scale is unknown.
pub(crate) fn format_amount(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return format!("{sign}{abs} minor units");
    }
    let code = currency.to_ascii_uppercase();
    let decimals: u32 = if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    };
    let scale = 10u64.pow(decimals);
    let mut number = group_thousands(abs / scale);
    if decimals > 0 {
        let frac = abs % scale;
        number.push('.');
        number.push_str(&format!("{frac:0width$}", width = decimals as usize));
    }
    match SYMBOLS.iter().find(|(c, _)| *c == code) {
        Some((_, symbol)) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{number} {code}"),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_amount;

    fn check(minor: i64, currency: &str, expected: &str) {
        assert_eq!(
            format_amount(minor, currency),
            expected,
            "{minor} {currency}"
        );
    }

    #[test]
    fn formats_with_the_real_minor_unit() {
        check(2999, "usd", "$29.99");
        check(2999, "USD", "$29.99");
        check(5, "usd", "$0.05");
        check(0, "usd", "$0.00");
        check(123_456_789, "usd", "$1,234,567.89");
        check(2999, "eur", "€29.99");
        check(1050, "gbp", "£10.50");
        check(1000, "jpy", "¥1,000");
        check(500, "krw", "₩500");
        check(15000, "clp", "15,000 CLP");
        check(1250, "bhd", "1.250 BHD");
        check(5120, "kwd", "5.120 KWD");
        check(7, "jod", "0.007 JOD");
        check(2999, "chf", "29.99 CHF");
        check(2999, "cad", "29.99 CAD");
        check(500, "isk", "5.00 ISK");
        check(2999, "xyz", "29.99 XYZ");
        check(-500, "usd", "-$5.00");
        check(-1250, "bhd", "-1.250 BHD");
        check(i64::MIN, "usd", "-$92,233,720,368,547,758.08");
        check(i64::MAX, "jpy", "¥9,223,372,036,854,775,807");
        check(2999, "", "2999 minor units");
        check(2999, "us$", "2999 minor units");
        check(2999, "dollars", "2999 minor units");
        check(-1, "€€", "-1 minor units");
    }
}
