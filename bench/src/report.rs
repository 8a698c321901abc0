//! Results of a run: a flat list of named figures plus optional latency
//! percentiles, printed as a human table or as one JSON object (`--json`).

use hdrhistogram::Histogram;

pub enum Value {
    Int(u64),
    Float(f64),
    Text(String),
    Bool(bool),
}

pub struct Report {
    pub mode: &'static str,
    pub fields: Vec<(&'static str, Value)>,
    /// Latency percentiles in microseconds.
    pub latency: Option<Vec<(&'static str, u64)>>,
}

impl Report {
    pub fn new(mode: &'static str) -> Report {
        Report {
            mode,
            fields: Vec::new(),
            latency: None,
        }
    }

    pub fn int(&mut self, k: &'static str, v: u64) -> &mut Self {
        self.fields.push((k, Value::Int(v)));
        self
    }

    pub fn float(&mut self, k: &'static str, v: f64) -> &mut Self {
        self.fields.push((k, Value::Float(v)));
        self
    }

    pub fn text(&mut self, k: &'static str, v: impl Into<String>) -> &mut Self {
        self.fields.push((k, Value::Text(v.into())));
        self
    }

    pub fn bool(&mut self, k: &'static str, v: bool) -> &mut Self {
        self.fields.push((k, Value::Bool(v)));
        self
    }

    pub fn latencies(&mut self, h: &Histogram<u64>) -> &mut Self {
        self.latency = Some(vec![
            ("p50_us", h.value_at_quantile(0.50)),
            ("p90_us", h.value_at_quantile(0.90)),
            ("p99_us", h.value_at_quantile(0.99)),
            ("p99_9_us", h.value_at_quantile(0.999)),
            ("max_us", h.max()),
        ]);
        self
    }

    pub fn to_json(&self) -> String {
        let mut parts = vec![format!("\"mode\":{}", json_str(self.mode))];
        for (k, v) in &self.fields {
            let v = match v {
                Value::Int(n) => n.to_string(),
                Value::Float(f) if f.is_finite() => format!("{f:.3}"),
                Value::Float(_) => "null".into(),
                Value::Text(s) => json_str(s),
                Value::Bool(b) => b.to_string(),
            };
            parts.push(format!("{}:{v}", json_str(k)));
        }
        if let Some(l) = &self.latency {
            let inner: Vec<String> = l
                .iter()
                .map(|(k, v)| format!("{}:{v}", json_str(k)))
                .collect();
            parts.push(format!("\"latency\":{{{}}}", inner.join(",")));
        }
        format!("{{{}}}", parts.join(","))
    }

    pub fn to_table(&self) -> String {
        let mut out = format!("ringlb-bench {}\n", self.mode);
        for (k, v) in &self.fields {
            let v = match v {
                Value::Int(n) => n.to_string(),
                Value::Float(f) => format!("{f:.2}"),
                Value::Text(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
            };
            out += &format!("  {k:<22} {v}\n");
        }
        if let Some(l) = &self.latency {
            for (k, v) in l {
                out += &format!(
                    "  {:<22} {:.3} ms\n",
                    k.replace("_us", ""),
                    *v as f64 / 1000.0
                );
            }
        }
        out
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o += "\\\"",
            '\\' => o += "\\\\",
            c if (c as u32) < 0x20 => o += &format!("\\u{:04x}", c as u32),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
