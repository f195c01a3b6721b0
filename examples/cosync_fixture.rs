//! Writes a CosyncJWT-style export (the CSV files of spec §7 "Import / export") with N users,
//! for trying `tessera import cosync` and measuring its speed. Each user `userI@example.com`
//! has the password `pwI` (bcrypt of its md5, cost 4 by default). Also writes the "old
//! server" public key and an app-token it signed, as a CosyncJWT deployment has them.
//!
//!     cargo run --release --example cosync_fixture -- OUT_DIR [USERS] [BCRYPT_COST]

use base64::Engine;
use std::fmt::Write as _;
use std::io::Write as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: cosync_fixture OUT_DIR [USERS] [COST]")?,
    );
    let users: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let cost: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    std::fs::create_dir_all(&out)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    use tessera::crypto::keys::{RsaBits, RsaSigner, generate_rsa, pem};
    let app_id = "5f0c1d2e3a4b4c5d8e9fa0b1c2d3e4f5";
    let app = generate_rsa(RsaBits::B2048)?;
    let server = generate_rsa(RsaBits::B2048)?;
    let server_signer = RsaSigner::from_pkcs8("old-server", &server.pkcs8)?;
    let mut claims = serde_json::Map::new();
    claims.insert("appId".into(), app_id.into());
    claims.insert("scope".into(), "app".into());
    claims.insert("iat".into(), 1_700_000_000.into());
    let app_token = tessera::crypto::jwt::sign_rs256(&server_signer, &claims)?;
    std::fs::write(out.join("old-server-public.pem"), server.public.pem())?;
    std::fs::write(out.join("old-app-token.txt"), format!("{app_token}\n"))?;
    std::fs::write(out.join("old-app-public.pem"), app.public.pem())?;
    std::fs::write(
        out.join("app-collection.csv"),
        format!(
            "name,status,jwtEnabled,appPrivateKey,appPublicKey,appToken,handle,invitationEnabled,signupEnabled,signupFlow,twoFactorVerification,realmAppId,metaData,metaDataEmail,locales,createdAt,updatedAt\n\
             Legacy Shop,active,true,{},{},{app_token},email,true,true,code,none,realm-xyz,\"[{{\"\"path\"\":\"\"user_data.name\"\",\"\"fieldName\"\":\"\"name\"\",\"\"required\"\":false,\"\"canEdit\"\":true}}]\",true,EN,Tue Jul 02 2024 10:11:12 GMT+0000 (Coordinated Universal Time),Tue Jul 02 2024 10:11:12 GMT+0000 (Coordinated Universal Time)\n",
            b64.encode(pem("PRIVATE KEY", &app.pkcs8)),
            b64.encode(app.public.pem()),
        ),
    )?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("user-collection.csv"))?);
    writeln!(
        f,
        "handle,password,status,appId,twoFactorPhoneVerification,twoFactorGoogleVerification,googleSecretKey,twoFactorCode,phone,phoneVerified,phoneCode,metaData,lastLogin,locale,createdAt,updatedAt"
    )?;
    for i in 0..users {
        let md5 = md5_hex(&format!("pw{i}"));
        let hash = bcrypt::hash_with_result(md5, cost)?.format_for_version(bcrypt::Version::TwoA);
        let mut line = String::new();
        write!(
            line,
            "user{i}@example.com,{hash},active,{app_id},false,false,,,,false,,\"{{\"\"user_data\"\":{{\"\"name\"\":\"\"User {i}\"\"}}}}\",,EN,2024-07-02T10:11:12.000Z,2024-07-02T10:11:12.000Z"
        )?;
        writeln!(f, "{line}")?;
    }
    f.flush()?;
    println!(
        "wrote {} with {users} users (password of userI@example.com: pwI)",
        out.display()
    );
    Ok(())
}

fn md5_hex(s: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(s.as_bytes()))
}
