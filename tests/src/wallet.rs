//! A person's steps with the page's wallet, shared by the end-to-end tests.

use std::time::Duration;

use serde_json::Value;

use crate::{Browser, Node, Result};

/// The balance row of `unit` ("BTC" or a ticker).
pub fn balance_row(unit: &str) -> String {
    format!("#balances tr[data-unit=\"{unit}\"]")
}

/// The selector of the history row of `txid`.
pub fn history_row(txid: &str) -> String {
    format!("#history li[data-txid=\"{txid}\"]")
}

/// The balance cell `column` (confirmed, unconfirmed, immature) of `unit`.
pub fn balance(unit: &str, column: &str) -> String {
    format!("{} .{column}", balance_row(unit))
}

impl Browser {
    /// The texts of every element matching `selector`.
    pub async fn texts(&self, selector: &str) -> Result<Vec<String>> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(e => e.textContent)",
            Value::String(selector.to_owned())
        );
        let values = self.eval(&script).await?;
        Ok(values
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The receive addresses this device and `sibling` (the same wallet) show, once they
    /// differ or after 30 s. Both may have claimed the same index before they heard of each
    /// other; the one with the higher device id moves on once they sync, so the change may
    /// come from either page and both are read. Polled, not observed: a wait in one browser
    /// could not be called off when the other changed (its WebDriver session stays busy until
    /// the script times out).
    pub async fn receive_addresses_beside(&self, sibling: &Browser) -> Result<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let shown = (
                self.text("#receive-address").await?,
                sibling.text("#receive-address").await?,
            );
            if shown.0 != shown.1 || tokio::time::Instant::now() > deadline {
                return Ok(shown);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Names this device in the Devices view and waits until the name is kept.
    pub async fn name_device(&self, name: &str) -> Result<()> {
        self.fill("#device-name", name).await?;
        self.click("#device-name-save").await?;
        self.wait_for_text("#device-name-saved", name).await?;
        Ok(())
    }

    /// The txid of the newest history row.
    pub async fn newest_txid(&self) -> Result<String> {
        self.text("#history li").await?;
        let txid = self
            .eval("return document.querySelector('#history li').dataset.txid")
            .await?;
        Ok(txid.as_str().unwrap_or_default().to_owned())
    }

    /// On a first visit: asks for a new wallet and returns the words it shows.
    pub async fn start_new_wallet(&self) -> Result<Vec<String>> {
        self.click("#create-wallet").await?;
        self.text("#mnemonic-words li").await?;
        let words = self.texts("#mnemonic-words li").await?;
        if words.len() != 12 {
            return Err(format!("12 words expected, the page shows {words:?}").into());
        }
        self.click("#words-written").await?;
        Ok(words)
    }

    /// The ids of the inputs asking back words (`confirm-N`, N counted from 1).
    pub async fn asked_words(&self) -> Result<Vec<String>> {
        self.text("input[id^=\"confirm-\"]").await?;
        let asked = self
            .eval("return [...document.querySelectorAll('input[id^=\"confirm-\"]')].map(input => input.id)")
            .await?;
        Ok(asked
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Types the words asked back, right, and `password` twice, and confirms.
    pub async fn confirm_new_wallet(&self, words: &[String], password: &str) -> Result<()> {
        for id in self.asked_words().await? {
            let position: usize = id.trim_start_matches("confirm-").parse()?;
            self.fill(&format!("#{id}"), &words[position - 1]).await?;
        }
        self.fill("#new-password", password).await?;
        self.fill("#new-password-again", password).await?;
        self.click("#create-confirm").await?;
        self.wait_for_text("#wallet-notice", "kept in this browser, encrypted")
            .await?;
        Ok(())
    }

    /// Creates a wallet under `password` the way a person does; returns its words.
    pub async fn create_wallet(&self, password: &str) -> Result<Vec<String>> {
        let words = self.start_new_wallet().await?;
        self.confirm_new_wallet(&words, password).await?;
        Ok(words)
    }

    /// Restores the wallet of `words` under `password`.
    pub async fn restore_wallet(&self, words: &[String], password: &str) -> Result<()> {
        self.click("#restore-wallet").await?;
        self.fill("#restore-phrase", &words.join(" ")).await?;
        self.fill("#new-password", password).await?;
        self.fill("#new-password-again", password).await?;
        self.click("#restore-confirm").await?;
        self.wait_for_text("#wallet-notice", "kept in this browser, encrypted")
            .await?;
        Ok(())
    }

    /// Fills the send form with `amount` BTC to `to` and asks to send: the page either refuses
    /// (in the wallet's notice) or puts the spend under review.
    pub async fn send(&self, to: &str, amount: &str) -> Result<()> {
        self.fill("#send-to", to).await?;
        self.fill("#send-amount", amount).await?;
        self.click("#send").await
    }

    /// Confirms the spend under review; returns the notice once it is sent ("Sent …: txid").
    pub async fn confirm_spend(&self) -> Result<String> {
        self.click("#spend-confirm").await?;
        self.wait_for_text("#wallet-notice", "Sent").await
    }

    /// Asks the node's faucet for coins to this wallet and waits for them to be paid.
    pub async fn ask_faucet_for_my_wallet(&self) -> Result<()> {
        self.click("#faucet-mine").await?;
        self.wait_for_text("#faucet-result", "Paid 0.10000000 BTC")
            .await?;
        Ok(())
    }
}

/// A person with a wallet made under `password` in a new profile and the faucet's coins,
/// confirmed; returns the tab and the wallet's words.
pub async fn tab_with_coins(node: &Node, password: &str) -> Result<(Browser, Vec<String>)> {
    let tab = Browser::open().await?;
    tab.goto(node.url()).await?;
    tab.wait_for_neighbours(1).await?;
    let words = tab.create_wallet(password).await?;
    tab.ask_faucet_for_my_wallet().await?;
    tab.wait_for_text(&balance("BTC", "confirmed"), "0.10000294")
        .await?;
    Ok((tab, words))
}

/// A person with a wallet made under `password` in a new profile and the faucet's coins and
/// DEMO units, confirmed.
pub async fn funded_tab(node: &Node, password: &str) -> Result<Browser> {
    let (tab, _) = tab_with_coins(node, password).await?;
    tab.wait_for_text(&balance("DEMO", "confirmed"), "1000.00")
        .await?;
    Ok(tab)
}

/// Places a limit order (`side` "buy" or "sell", price in BTC per unit) with the market form.
pub async fn place_order(tab: &Browser, side: &str, price: &str, amount: &str) -> Result<()> {
    let script = format!(
        "const select = document.querySelector('#order-side'); select.value = '{side}'; \
         return select.value"
    );
    tab.eval(&script).await?;
    tab.fill("#order-price", price).await?;
    tab.fill("#order-amount", amount).await?;
    tab.click("#place-order").await
}

/// After a book level was picked (which fills in the order form's side and price): types
/// `amount`, waits for the form's total to show `total`, asserts the `side` and `price` the pick
/// filled in, and places the order.
pub async fn place_picked(
    tab: &Browser,
    amount: &str,
    total: &str,
    side: &str,
    price: &str,
) -> Result<()> {
    tab.fill("#order-amount", amount).await?;
    tab.wait_for_text("#order-total", total).await?;
    assert_eq!(
        tab.values(&["#order-side", "#order-price"]).await?,
        [side, price]
    );
    tab.click("#place-order").await
}
