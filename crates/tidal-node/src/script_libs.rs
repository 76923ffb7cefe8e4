//! The libraries Redis gives scripts besides `redis`: `cjson` (JSON, as
//! lua-cjson writes and reads it) and `bit` (LuaBitOp's 32-bit
//! operations).

use mlua::{LightUserData, Lua, Table, Value, Variadic};

/// How deep `cjson.encode` and `cjson.decode` go, as lua-cjson's default.
const MAX_DEPTH: usize = 1000;

/// `cjson.null`: lua-cjson's null, a light userdata holding NULL.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(LightUserData(p)) if p.is_null())
}

fn fail(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::runtime(msg.into())
}

/// `%.<prec>g`, as C's printf writes it.
pub(crate) fn format_g(n: f64, prec: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = prec.max(1);
    // The exponent %e would write, after rounding to `p` digits.
    let sci = format!("{:.*e}", p - 1, n);
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    if exp < -4 || exp >= p as i32 {
        let mantissa =
            if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let s = format!("{:.*}", (p as i32 - 1 - exp).max(0) as usize, n);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Add `cjson` and `bit` to the globals.
pub fn install(lua: &Lua, g: &Table) -> mlua::Result<()> {
    let cjson = lua.create_table()?;
    cjson.raw_set("null", null())?;
    cjson.raw_set(
        "encode",
        lua.create_function(|_, args: Variadic<Value>| {
            let [v] = args.as_slice() else { return Err(fail("bad argument #1 to 'encode' (expected 1 argument)")) };
            let mut out = String::new();
            encode(v, 0, &mut out)?;
            Ok(out)
        })?,
    )?;
    // lua-cjson's setting of whether the encoder keeps its buffer between
    // calls: it changes no text, so it is taken and answered, not kept.
    cjson.raw_set(
        "encode_keep_buffer",
        lua.create_function(|_, args: Variadic<Value>| match args.first() {
            None | Some(Value::Nil) => Ok(true),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(Value::String(s)) if s.as_bytes().as_ref() == b"on" => Ok(true),
            Some(Value::String(s)) if s.as_bytes().as_ref() == b"off" => Ok(false),
            Some(_) => Err(fail("bad argument #1 to 'encode_keep_buffer' (invalid option)")),
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lua.create_function(|lua, args: Variadic<Value>| {
            let [Value::String(s)] = args.as_slice() else {
                return Err(fail("bad argument #1 to 'decode' (string expected)"));
            };
            let json: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| fail(format!("Expected value but found invalid token at character {}", e.column())))?;
            decode(lua, &json, 0)
        })?,
    )?;
    g.raw_set("cjson", cjson)?;
    g.raw_set("bit", bit(lua)?)?;
    Ok(())
}

/// The longest text `cjson.encode` writes (a table that names another
/// twice at each level grows exponentially).
const MAX_TEXT: usize = 64 << 20;

fn encode(v: &Value, depth: usize, out: &mut String) -> mlua::Result<()> {
    if out.len() > MAX_TEXT {
        return Err(fail("Cannot serialise: the text would pass 64 MiB"));
    }
    if depth > MAX_DEPTH {
        return Err(fail(format!("Cannot serialise, excessive nesting ({})", depth)));
    }
    match v {
        Value::Nil => out.push_str("null"),
        v if is_null(v) => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => out.push_str(&i.to_string()),
        Value::Number(n) if n.is_finite() => out.push_str(&format_g(*n, 14)),
        Value::Number(_) => return Err(fail("Cannot serialise number: must not be NaN or Inf")),
        Value::String(s) => quote(&s.as_bytes(), out),
        Value::Table(t) => {
            // An array when every key is an index 1..n; an object else.
            let mut max = 0usize;
            let mut count = 0usize;
            let mut array = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
                    _ => array = false,
                }
            }
            if array && count > 0 {
                // lua-cjson refuses arrays far sparser than their length.
                if max > 10 && max > count * 2 {
                    return Err(fail("Cannot serialise table: excessively sparse array"));
                }
                out.push('[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(',');
                    }
                    encode(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
                out.push(']');
                return Ok(());
            }
            out.push('{');
            let mut first = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair?;
                if !first {
                    out.push(',');
                }
                first = false;
                match &k {
                    Value::String(s) => quote(&s.as_bytes(), out),
                    Value::Integer(i) => quote(i.to_string().as_bytes(), out),
                    Value::Number(n) => quote(format_g(*n, 14).as_bytes(), out),
                    _ => return Err(fail("Cannot serialise table: table key must be a number or string")),
                }
                out.push(':');
                encode(&v, depth + 1, out)?;
            }
            out.push('}');
        }
        other => return Err(fail(format!("Cannot serialise {}: type not supported", other.type_name()))),
    }
    Ok(())
}

/// A JSON string as lua-cjson writes one (it escapes `/` too).
fn quote(bytes: &[u8], out: &mut String) {
    out.push('"');
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn decode(lua: &Lua, json: &serde_json::Value, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(fail(format!("Found too many nested data structures ({depth})")));
    }
    Ok(match json {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, decode(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(fields) => {
            let t = lua.create_table()?;
            for (k, v) in fields {
                t.raw_set(k.as_str(), decode(lua, v, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A number as LuaBitOp reads it: rounded, then taken modulo 2^32.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_str()?.trim().parse::<f64>().map_err(|_| fail("bad argument (number expected)"))?,
        _ => return Err(fail(format!("bad argument (number expected, got {})", v.type_name()))),
    };
    Ok(n.round_ties_even().rem_euclid(4_294_967_296.0) as u32 as i32)
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let one = |f: fn(i32) -> i32| lua.create_function(move |_, v: Value| Ok(f(tobit(&v)?)));
    let many = |f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut it = args.iter();
            let first = it.next().ok_or_else(|| fail("bad argument #1 (number expected, got no value)"))?;
            let mut acc = tobit(first)?;
            for v in it {
                acc = f(acc, tobit(v)?);
            }
            Ok(acc)
        })
    };
    let shift = |f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (x, n): (Value, Value)| Ok(f(tobit(&x)?, (tobit(&n)? & 31) as u32)))
    };
    t.raw_set("tobit", one(|x| x)?)?;
    t.raw_set("bnot", one(|x| !x)?)?;
    t.raw_set("bswap", one(i32::swap_bytes)?)?;
    t.raw_set("band", many(|a, b| a & b)?)?;
    t.raw_set("bor", many(|a, b| a | b)?)?;
    t.raw_set("bxor", many(|a, b| a ^ b)?)?;
    t.raw_set("lshift", shift(|x, n| ((x as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift(|x, n| ((x as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift(|x, n| x >> n)?)?;
    t.raw_set("rol", shift(|x, n| (x as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift(|x, n| (x as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let x = tobit(&x)? as u32;
            let n = match n {
                Some(n) => tobit(&n)?,
                None => 8,
            };
            let (digits, upper) = (n.unsigned_abs().min(8) as usize, n < 0);
            let hex = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(hex[8 - digits..].to_string())
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(code: &str) -> String {
        let lua = Lua::new();
        install(&lua, &lua.globals()).unwrap();
        let v: Value = lua.load(code).eval().unwrap();
        match v {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => format_g(n, 14),
            Value::Boolean(b) => b.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn g_format_is_printfs() {
        for (n, p, want) in [
            (0.1, 17, "0.10000000000000001"),
            (1.3, 17, "1.3"),
            (1e100, 17, "1e+100"),
            (42.0, 17, "42"),
            (100.5, 14, "100.5"),
            (1e15, 14, "1e+15"),
            (0.0001, 14, "0.0001"),
            (0.00001, 14, "1e-05"),
            (-2.5, 14, "-2.5"),
        ] {
            assert_eq!(format_g(n, p), want, "{n} at {p}");
        }
    }

    #[test]
    fn cjson_writes_and_reads_as_lua_cjson_does() {
        assert_eq!(eval("return cjson.encode({1, 2, 'a/b'})"), r#"[1,2,"a\/b"]"#);
        assert_eq!(eval("return cjson.encode({a = 1.5})"), r#"{"a":1.5}"#);
        assert_eq!(eval("return cjson.encode({})"), "{}");
        assert_eq!(eval("return cjson.encode(cjson.null)"), "null");
        assert_eq!(eval("local t = cjson.decode('{\"a\":[1,2,{\"b\":null}]}') return t.a[2] + #t.a"), "5");
        assert_eq!(eval("return cjson.decode('[1,null]')[2] == cjson.null"), "true");
        assert_eq!(eval("return cjson.encode(cjson.decode('{\"x\":\"\\\\u00e9\"}'))"), "{\"x\":\"\u{e9}\"}");
    }

    #[test]
    fn bit_is_luabitops_32_bits() {
        assert_eq!(eval("return bit.band(0xff, 0x0f0)"), "240");
        assert_eq!(eval("return bit.bor(1, 2, 4)"), "7");
        assert_eq!(eval("return bit.bxor(5, 1)"), "4");
        assert_eq!(eval("return bit.bnot(0)"), "-1");
        assert_eq!(eval("return bit.tobit(0xffffffff)"), "-1");
        assert_eq!(eval("return bit.lshift(1, 31)"), "-2147483648");
        assert_eq!(eval("return bit.rshift(-1, 28)"), "15");
        assert_eq!(eval("return bit.arshift(-256, 4)"), "-16");
        assert_eq!(eval("return bit.rol(0x12345678, 8)"), tobit_str(0x34567812));
        assert_eq!(eval("return bit.tohex(255)"), "000000ff");
        assert_eq!(eval("return bit.tohex(255, -2)"), "FF");
        assert_eq!(eval("return bit.bswap(0x12345678)"), tobit_str(0x78563412));
    }

    fn tobit_str(x: u32) -> String {
        (x as i32).to_string()
    }
}
