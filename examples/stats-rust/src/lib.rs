//! Statistics over the numbers in the parameter `values`.
//!
//! `{"values": [3, 1, 2]}` → `{"count":3,"sum":6,"mean":2,"median":2,"min":1,"max":3,"stddev":0.816…}`.
//! A missing or non-numeric `values` is an application error (`{"error": …}`),
//! which keeps the sandbox warm.
use wasmwhisk_action::{Value, json};

fn main(params: Value) -> Result<Value, String> {
    let Some(items) = params["values"].as_array() else {
        return Err("parameter 'values' must be an array of numbers".to_string());
    };
    let mut values = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_f64() {
            Some(v) => values.push(v),
            None => return Err(format!("values[{i}] is not a number: {item}")),
        }
    }
    if values.is_empty() {
        return Ok(json!({ "count": 0 }));
    }
    values.sort_by(f64::total_cmp);
    let count = values.len();
    let sum: f64 = values.iter().sum();
    let mean = sum / count as f64;
    let median = if count % 2 == 1 {
        values[count / 2]
    } else {
        (values[count / 2 - 1] + values[count / 2]) / 2.0
    };
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count as f64;
    eprintln!("computed statistics over {count} values");
    Ok(json!({
        "count": count,
        "sum": sum,
        "mean": mean,
        "median": median,
        "min": values[0],
        "max": values[count - 1],
        "stddev": variance.sqrt(),
    }))
}

wasmwhisk_action::action!(main);
