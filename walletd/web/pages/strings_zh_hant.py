"""Texts of the pages: labels named by key in English, and the Traditional Chinese catalogue."""

# Keys that are names rather than English sentences get their English text here.
EN: dict[str, str] = {
    "segment:all": "Everyone",
    "segment:subscribed_only": "Joined, never bought",
    "segment:one_purchase": "Bought once",
    "segment:three_or_more": "Bought three times or more",
    "segment:champions": "Champions (recent, frequent, big spenders)",
    "segment:loyal": "Loyal customers",
    "segment:at_risk": "At risk (used to come, not lately)",
    "segment:sleeping": "Sleeping (no visit for months)",
    "segment:birthday_this_month": "Birthday this month",
    "status:draft": "Draft",
    "status:scheduled": "Scheduled",
    "status:sending": "Sending",
    "status:sent": "Sent",
    "status:cancelled": "Cancelled",
    "automation:welcome": "Welcome",
    "automation:birthday": "Birthday",
    "automation:post_purchase": "Thank you after a visit",
    "automation:win_back": "Win back",
    "automation:tier_upgrade": "Tier upgrade",
    "automation:points_expiring": "Points about to expire",
    "automation:reward_near": "Reward within reach",
    "earn": "Purchase",
    "redeem": "Redeemed",
    "bonus": "Bonus",
    "adjust": "Adjustment",
    "expire": "Expired",
    "reversal": "Refund",
    "opening": "Opening balance",
}

ZH_HANT: dict[str, str] = {
    # layout and shared
    "Skip to content": "跳到主要內容",
    "Log in": "登入",
    "Log out": "登出",
    "Cashier": "收銀台",
    "Dashboard": "管理後台",
    "Account": "帳號",
    "E-mail": "電子郵件",
    "Password": "密碼",
    "Or use a cashier key": "或使用收銀金鑰",
    "Cashier key": "收銀金鑰",
    "The key starts with wd_c_. It is kept on the server only as a hash and never shown again.": (
        "金鑰以 wd_c_ 開頭。伺服器只保存它的雜湊值，不會再次顯示。"
    ),
    "Log in with key": "以金鑰登入",
    "Loyalty cards for Apple Wallet and Google Wallet.": "Apple 錢包與 Google 錢包的會員卡。",
    "Error": "錯誤",
    "(optional)": "（選填）",
    "Please correct the marked fields.": "請修正標示的欄位。",
    "Name": "姓名",
    "Phone": "電話",
    "Birthday": "生日",
    "Member": "會員",
    "Points": "點數",
    "Tier": "等級",
    "Save": "儲存",
    "Preview": "預覽",
    "Print": "列印",
    "yes": "是",
    "no": "否",
    "On": "開啟",
    "Off": "關閉",
    # customer
    "Join {program}": "加入{program}",
    "Get a loyalty card for Apple Wallet or Google Wallet. Show it at the till to collect points.": (  # noqa: E501
        "領取 Apple 錢包或 Google 錢包的會員卡，結帳時出示即可累積點數。"
    ),
    "E-mail or phone: we need one of them to find your card again.": (
        "電子郵件或電話請至少填一項，遺失會員卡時才能找回。"
    ),
    "For a birthday gift, and to prove it is you if you lose your card.": (
        "用於生日禮，以及遺失會員卡時確認是您本人。"
    ),
    "Send me offers and news on my card": "在會員卡上接收優惠與最新消息",
    "Referral code": "推薦碼",
    "If a friend invited you.": "如果是朋友邀請您加入。",
    "Get my card": "領取會員卡",
    "Lost your card? Find it again": "遺失會員卡？找回它",
    "Your card": "您的會員卡",
    "Welcome, {name}!": "歡迎，{name}！",
    "Your {program} card is ready. Add it to your phone's wallet:": (
        "您的{program}會員卡已準備好，請加入手機錢包："
    ),
    "Add to": "加入",
    "Apple Wallet": "Apple 錢包",
    "Add to Google Wallet": "新增至 Google 錢包",
    "Google Wallet": "Google 錢包",
    "Google Wallet is not set up on this server yet.": "此伺服器尚未設定 Google 錢包。",
    "Your QR code": "您的 QR 碼",
    "No wallet app? Show this code at the till.": "沒有錢包 App？結帳時出示這個條碼即可。",
    "Bookmark this page: its address is your card. Keep it to yourself.": (
        "請將此頁加入書籤：這個網址就是您的會員卡，請勿分享給他人。"
    ),
    "QR code of the card": "會員卡 QR 碼",
    "QR code of your card": "您的會員卡 QR 碼",
    "Back of the card": "卡片背面",
    "Find your card": "找回會員卡",
    "Enter the e-mail or phone and the birthday you gave when you joined.": (
        "請輸入加入時填寫的電子郵件或電話，以及生日。"
    ),
    "Too many attempts. Wait a few minutes.": "嘗試次數過多，請稍候幾分鐘。",
    "We found no card with these details.": "找不到符合這些資料的會員卡。",
    "If you gave no birthday when you joined, ask at the counter: staff can find your card by e-mail or phone.": (  # noqa: E501
        "如果加入時沒有填寫生日，請洽櫃台：店員可以用電子郵件或電話幫您找回會員卡。"
    ),
    "E-mail or phone": "電子郵件或電話",
    "Invite friends": "邀請朋友",
    "Your referral code is {code}. Friends who join with it and buy something earn you both points.": (  # noqa: E501
        "您的推薦碼是 {code}。朋友用它加入並完成首次消費後，你們都能獲得點數。"
    ),
    "Find my card": "找回我的會員卡",
    "Join instead": "改為加入會員",
    # cashier
    "Scan a card": "掃描會員卡",
    "Online": "連線中",
    "Card code": "會員卡號碼",
    "Scan with a scanner or the camera, or type the code under the QR code.": (
        "用掃描器或相機掃描，或輸入 QR 碼下方的號碼。"
    ),
    "Camera": "相機",
    "Stop camera": "關閉相機",
    "Amount": "金額",
    "Credit points": "累積點數",
    "Result": "結果",
    "Nothing scanned yet.": "尚未掃描。",
    "Waiting and recent scans": "待送出與最近的掃描",
    "Sending…": "傳送中…",
    "Pending: will be sent when the connection returns": "待送出：恢復連線後自動送出",
    "Sent": "已送出",
    "Refused": "被拒絕",
    "Offline: scans are kept on this device": "離線：掃描紀錄暫存在此裝置",
    "Already credited: this is the first result, nothing was added twice.": (
        "已累積過：這是第一次的結果，沒有重複加點。"
    ),
    "points earned": "點入帳",
    "points": "點",
    "Balance": "餘額",
    "Redeem": "兌換",
    "Redeemed": "已兌換",
    "No reward reachable yet.": "目前還沒有可兌換的獎勵。",
    "Your session ended: log in again. Waiting scans stay on this device.": (
        "登入已逾時，請重新登入。待送出的掃描會保留在此裝置。"
    ),
    "Redeeming needs a connection.": "兌換需要網路連線。",
    "The camera could not be opened.": "無法開啟相機。",
    "That key is not valid.": "金鑰無效。",
    "This key may not use this page.": "這個金鑰不能使用此頁面。",
    "Wrong e-mail or password.": "電子郵件或密碼錯誤。",
    "This account may not use this page.": "此帳號不能使用此頁面。",
    # dashboard
    "Overview": "總覽",
    "Members": "會員",
    "Program": "會員方案",
    "Campaigns": "行銷活動",
    "Automations": "自動訊息",
    "last 30 days, total {n}": "最近 30 天，共 {n}",
    "max": "最高",
    "Show as table": "以表格顯示",
    "Day": "日期",
    "Count": "數量",
    "Active members (30 days)": "活躍會員（30 天）",
    "Repeat customers": "回購率",
    "Revenue from returning customers (30 days)": "回購顧客營收（30 天）",
    "Cards in Apple / Google Wallet": "Apple／Google 錢包中的卡片",
    "Scans per day": "每日掃描次數",
    "New members per day": "每日新會員",
    "Enrollment link": "入會連結",
    "Print QR poster": "列印 QR 海報",
    "Members CSV": "會員 CSV",
    "Ledger CSV": "點數紀錄 CSV",
    "Poster": "海報",
    "QR code of the enrollment link": "入會連結 QR 碼",
    "Back to the dashboard": "回到管理後台",
    "Search by name, e-mail, phone, referral code or number": (
        "以姓名、電子郵件、電話、推薦碼或編號搜尋"
    ),
    "Search": "搜尋",
    "Contact": "聯絡方式",
    "Visits": "來店次數",
    "No members found.": "找不到會員。",
    "Offers and news": "優惠與消息",
    "Joined": "加入日期",
    "Open the member's card page": "開啟會員的卡片頁面",
    "Give this link only to the member: it is their card (for a lost card).": (
        "此連結只能交給會員本人：它就是會員卡（用於找回遺失的卡片）。"
    ),
    "Adjust points": "調整點數",
    "Points to add (negative to take away)": "增加的點數（負數表示扣除）",
    "Reason": "原因",
    "Adjust": "調整",
    "Points adjusted.": "點數已調整。",
    "Ledger": "點數紀錄",
    "When": "時間",
    "What": "項目",
    "No entries yet.": "尚無紀錄。",
    "Sample Member": "範例會員",
    "Earning": "累點規則",
    "Program name": "方案名稱",
    "Points per {currency} 1 spent": "每消費 {currency} 1 元可得點數",
    "Rounding": "進位方式",
    "down": "無條件捨去",
    "to nearest": "四捨五入",
    "up": "無條件進位",
    "Welcome bonus (points)": "入會禮（點）",
    "Birthday bonus (points)": "生日禮（點）",
    "Referral bonus for the friend who invites": "推薦人獎勵（點）",
    "Referral bonus for the new member": "被推薦的新會員獎勵（點）",
    "Smallest first purchase that earns the referral bonuses": "獲得推薦獎勵的首次消費最低金額",
    "Coupon for the friend who invites": "給推薦人的優惠券",
    "No coupon": "不送優惠券",
    "Member day": "會員日",
    (
        "A member's Apple Wallet card while the promotion runs (drawn from the real pass.json); "
        "it follows the name as you type."
    ): "促銷進行時會員的 Apple 錢包卡片（依真實 pass.json 繪製），會隨輸入的名稱即時更新。",
    "Both bonuses are taken back if that purchase is refunded.": (
        "該筆消費若退款，兩份推薦獎勵都會收回。"
    ),
    "Points expire after (months)": "點數有效期（月）",
    "Empty: points never expire.": "留空：點數永不過期。",
    "Tiers": "會員等級",
    "Tiers are reached by": "升等依據",
    "spend in the last 12 months ({currency})": "最近 12 個月消費金額（{currency}）",
    "points earned in the last 12 months": "最近 12 個月累積點數",
    "Tier name": "等級名稱",
    "New tier": "新增等級",
    "From": "門檻",
    "Points ×": "點數倍率",
    "Member discount %": "會員折扣 %",
    "Benefits": "會員權益",
    "Remove": "移除",
    "Rewards": "獎勵",
    "Reward": "獎勵",
    "New reward": "新增獎勵",
    "Costs (points)": "所需點數",
    "Offered": "提供中",
    "Card design": "卡片設計",
    "Design and logo": "設計與標誌",
    "Logos come with the card designs in pass_templates/ on the server.": (
        "標誌隨伺服器上 pass_templates/ 的卡片設計提供。"
    ),
    "Background": "背景",
    "Text": "文字",
    "Labels": "標籤",
    "Save program": "儲存方案",
    "Drawn from the real pass.json and Google object; it follows the form as you type.": (
        "依實際的 pass.json 與 Google 物件繪製，會隨表單即時更新。"
    ),
    "Program saved; {count} cards will refresh.": "方案已儲存；{count} 張卡片將會更新。",
    "New campaign": "新增行銷活動",
    "Message on the card": "卡片上的訊息",
    "Shown on the lock screen and the back of the card.": "會顯示在鎖定畫面與卡片背面。",
    "Who gets it": "發送對象",
    "Advanced filter (JSON)": "進階篩選（JSON）",
    "Filter tree; replaces the choice above": "篩選條件；會取代上方的選擇",
    "Send at (program time zone {zone})": "發送時間（方案時區 {zone}）",
    "Empty: send now.": "留空：立即發送。",
    "Hold out (% of the audience, to measure the effect)": "保留組（對象的百分比，用於衡量成效）",
    "Save as draft": "儲存為草稿",
    "{n} members are in this audience now.": "目前此對象共有 {n} 位會員。",
    "Preview audience": "預覽對象人數",
    "Create campaign": "建立行銷活動",
    "All campaigns": "所有行銷活動",
    "No campaigns yet.": "尚無行銷活動。",
    "Campaign created.": "行銷活動已建立。",
    "Campaign cancelled.": "行銷活動已取消。",
    "In the audience now": "目前對象人數",
    "Recipients": "收件人",
    "Delivered": "已送達",
    "Waiting": "等待中",
    "Failed": "失敗",
    "Held out": "保留組",
    "Skipped": "略過",
    "Send at": "發送時間",
    "Waiting because": "等待原因",
    "Expected to finish": "預計完成",
    "Cancel campaign": "取消行銷活動",
    "Automatic messages on the card. Placeholders such as {name} and {points} are filled in for each member.": (  # noqa: E501
        "卡片上的自動訊息。{name}、{points} 等預留位置會替換成每位會員的資料。"
    ),
    "Switched on": "開啟",
    "Message": "訊息",
    "Days to wait": "等待天數",
    "Automation saved.": "自動訊息已儲存。",
    "segment:all": "所有會員",
    "segment:subscribed_only": "已入會、尚未消費",
    "segment:one_purchase": "消費過一次",
    "segment:three_or_more": "消費三次以上",
    "segment:champions": "最佳顧客",
    "segment:loyal": "忠實顧客",
    "segment:at_risk": "流失風險",
    "segment:sleeping": "沉睡顧客",
    "segment:birthday_this_month": "本月壽星",
    "status:draft": "草稿",
    "status:scheduled": "已排程",
    "status:sending": "發送中",
    "status:sent": "已發送",
    "status:cancelled": "已取消",
    "automation:welcome": "歡迎訊息",
    "automation:birthday": "生日祝福",
    "automation:post_purchase": "消費後感謝",
    "automation:win_back": "喚回顧客",
    "automation:tier_upgrade": "升等通知",
    "automation:points_expiring": "點數即將到期",
    "automation:reward_near": "即將可兌換獎勵",
    "earn": "消費累點",
    "redeem": "兌換",
    "bonus": "贈點",
    "adjust": "調整",
    "expire": "過期",
    "reversal": "退款",
    "opening": "期初點數",
    # error pages
    "Something is wrong with this request": "這個請求有問題",
    "Go back and try again.": "請返回再試一次。",
    "You may not open this page": "您無權開啟此頁面",
    "Log in with an account that may.": "請以有權限的帳號登入。",
    "Page not found": "找不到頁面",
    "The link may be old or mistyped.": "連結可能已過期或輸入錯誤。",
    "That was too much at once": "一次送出的資料太多",
    "Send less and try again.": "請減少內容後再試一次。",
    "Too many attempts": "嘗試次數過多",
    "Wait a few minutes and try again.": "請稍候幾分鐘再試。",
    "This form has expired": "表單已過期",
    "Go back, reload the page and send it again.": "請返回、重新整理頁面後再送出。",
    # messages of the services, shown next to fields
    "name must be 1 to 200 characters": "姓名須為 1 至 200 個字元",
    "email is not a valid address": "電子郵件格式不正確",
    "phone is not a valid number": "電話號碼格式不正確",
    "birthday must be a past date": "生日必須是過去的日期",
    "birthday must be a date": "請輸入正確的日期",
    "referral code is not known": "找不到這個推薦碼",
    "enter an e-mail or a phone number": "請填寫電子郵件或電話",
    "enter the e-mail or phone you joined with": "請輸入加入時填寫的電子郵件或電話",
    "points must be a non-zero whole number": "點數須為非零的整數",
    "points must be within ±10,000,000": "點數須在 ±10,000,000 以內",
    "reason must be 1 to 200 characters": "原因須為 1 至 200 個字元",
    "message must be a non-empty string": "訊息不可空白",
    "send time must be a date and time": "請輸入發送日期與時間",
    "the filter is not valid JSON": "篩選條件不是有效的 JSON",
    "holdout must be a whole number from 0 to 50": "保留組須為 0 至 50 的整數",
    "two tiers have the same name": "有兩個等級名稱相同",
    "two tiers have the same threshold": "有兩個等級門檻相同",
    "tier name must be 1 to 64 characters": "等級名稱須為 1 至 64 個字元",
    "reward name must be 1 to 200 characters": "獎勵名稱須為 1 至 200 個字元",
    "template is not a known card design": "未知的卡片設計",
    "delay_days must be 0 to 365": "等待天數須為 0 至 365",
    # offers
    "A sample coupon drawn from the real pass.json; it follows the form as you type.": (
        "依真實 pass.json 繪製的範例優惠券，會隨表單即時更新。"
    ),
    "Active": "使用中",
    "Already redeemed with this request: this is the first result.": (
        "此請求已兌換過：這是第一次的結果。"
    ),
    "Amount off": "折抵金額",
    "An archived offer issues no more coupons.": "已封存的優惠不再發放優惠券。",
    "An offer is what a coupon gives. Issue coupons to members; they redeem them at the till.": (
        "優惠決定優惠券的內容。發放優惠券給會員，會員在櫃檯兌換。"
    ),
    "Apple Wallet coupon": "Apple 錢包優惠券",
    "Archive": "封存",
    "Archived": "已封存",
    "Back of the coupon": "優惠券背面",
    "Bonus points": "贈送點數",
    "Code": "代碼",
    "Conditions": "使用條件",
    "Coupon redeemed": "優惠券已兌換",
    "Coupon {code} issued to {name}.": "已發放優惠券 {code} 給 {name}。",
    "Coupons": "優惠券",
    "Coupons issued": "已發放優惠券",
    "Coupons per member at most": "每位會員最多張數",
    "Days in the program's time zone ({zone}).": "日期依方案時區（{zone}）計算。",
    "Details": "詳細資料",
    "Discount given ({currency})": "折扣總額（{currency}）",
    "Edit": "編輯",
    "Edit offer": "編輯優惠",
    "Empty: no limit.": "留空：不限張數。",
    "Empty: the value above.": "留空：使用上方的數值。",
    "Expired": "已過期",
    "Expires": "到期",
    "Free item": "免費品項",
    "Give": "贈送",
    "Gives": "內容",
    "In Google Wallet your coupons appear inside your loyalty card by themselves.": (
        "在 Google 錢包中，您的優惠券會自動顯示在會員卡內。"
    ),
    "Issue coupons": "發放優惠券",
    "Issue to this member": "發給這位會員",
    "Issue to this segment": "發給這個族群",
    "Issued": "已發放",
    "Issuing to the segment has started (issue {id}).": "已開始發放給族群（批次 {id}）。",
    "Kind": "類型",
    "Member number or e-mail": "會員編號或電子郵件",
    "Minimum spend ({currency})": "最低消費（{currency}）",
    "New offer": "新增優惠",
    "No coupons right now.": "目前沒有優惠券。",
    "No coupons.": "沒有優惠券。",
    "No expiry date": "無到期日",
    "No offers yet.": "尚無優惠。",
    "Not used for a free item.": "免費品項不需填寫。",
    "Offer": "優惠",
    "Offer archived: no more coupons are issued.": "優惠已封存：不再發放優惠券。",
    "Offer name": "優惠名稱",
    "Offer saved.": "優惠已儲存。",
    "Offers": "優惠",
    "Only for a free item: what the member gets.": "僅限免費品項：會員獲得的品項。",
    "Or issue to everyone in": "或發給以下族群的所有人",
    "Percent off": "折扣百分比",
    "Purchase amount for the coupon": "使用優惠券的消費金額",
    "QR code of the coupon": "優惠券的 QR 碼",
    "Redeem coupon": "兌換優惠券",
    "Redemption rate": "兌換率",
    "Report": "報表",
    "Revenue of those visits ({currency})": "兌換當次營收（{currency}）",
    "Save offer": "儲存優惠",
    "Scan with a scanner or the camera, or type the code under the QR code. A coupon's code redeems the coupon.": (  # noqa: E501
        "用掃描器或相機掃描，或輸入 QR 碼下方的代碼。掃描優惠券代碼即可兌換優惠券。"
    ),
    "State": "狀態",
    "Status": "狀態",
    "Take off": "折抵",
    "Terms": "使用條款",
    "Valid for (days after it is issued)": "有效天數（自發放日起）",
    "Valid from": "開始日期",
    "Valid until (last day)": "有效至（最後一天）",
    "Valid until {date}": "有效至 {date}",
    "Value (percent, {currency} or points)": "數值（百分比、{currency} 或點數）",
    "Value for members of a tier": "各等級會員的數值",
    "Value for {tier}": "{tier} 的數值",
    "What it gives": "優惠內容",
    "Your coupons": "您的優惠券",
    "bonus points credited": "贈送點數已入帳",
    "until": "有效至",
    "{currency} {value} off": "折抵 {currency} {value}",
    "{name} already has as many coupons of this offer as allowed.": (
        "{name} 持有此優惠的優惠券已達上限。"
    ),
    "{name} has this coupon.": "{name} 已持有這張優惠券。",
    "{value} bonus points": "贈送 {value} 點",
    "{value}% off": "{value}% 折扣",
    "no member has this number or e-mail": "找不到此編號或電子郵件的會員",
    "choose who gets it": "請選擇發放對象",
    "the offer is archived; it can no longer be issued": "此優惠已封存，無法再發放",
    "the member belongs to another program": "此會員屬於其他方案",
    "this coupon was already redeemed": "這張優惠券已兌換過",
    "this coupon has expired": "這張優惠券已過期",
    # promotions
    "A promotion multiplies the points of every scan while it runs, on top of the tier's multiplier (at most ×10 in all).": (  # noqa: E501
        "促銷期間，每次掃描的點數會再乘上倍數，並與等級倍數相乘（合計最多 ×10）。"
    ),
    "All promotions": "所有促銷",
    "Cancel": "取消",
    "Delete": "刪除",
    "Edit promotion": "編輯促銷",
    "First day": "開始日",
    "Last day": "最後一天",
    "New promotion": "新增促銷",
    "No promotions yet.": "尚無促銷。",
    "Only for these tiers": "僅限這些等級",
    "Only on these weekdays": "僅限星期",
    "Points multiplier (more than 1, at most 10)": "點數倍數（大於 1，最多 10）",
    "Promotion deleted.": "促銷已刪除。",
    "Promotion saved.": "促銷已儲存。",
    "Promotions": "促銷",
    "Save promotion": "儲存促銷",
    "Mon": "一",
    "Tue": "二",
    "Wed": "三",
    "Thu": "四",
    "Fri": "五",
    "Sat": "六",
    "Sun": "日",
    "multiplier must be a decimal more than 1 and at most 10 (e.g. 2 or 1.5)": (
        "倍數須大於 1 且最多為 10（例如 2 或 1.5）"
    ),
    "starts_on must not be after ends_on": "開始日不可晚於最後一天",
    "name must be 1 to 200 printable characters": "名稱須為 1 至 200 個可顯示字元",
    # issue 11 [settings]
    "Messages, tills and language": "訊息、收銀與語言",
    "Time zone": "時區",
    "Quiet hours and member days follow this zone.": "勿擾時段與會員日依此時區計算。",
    "Quiet from": "勿擾開始",
    "Quiet until": "勿擾結束",
    "No messages are sent between these times. Leave both empty for none.": (
        "這段時間內不發送訊息。兩欄皆留空表示不設勿擾時段。"
    ),
    "Marketing messages per member per week": "每位會員每週行銷訊息上限",
    "0 to 50; 0 sends no marketing messages.": "0 到 50；0 表示不發送行銷訊息。",
    "Most points one scan earns": "單次消費最多可得點數",
    "Empty: no ceiling.": "留空：不設上限。",
    "Days a cashier may refund a scan": "收銀員可退款的天數",
    "Admins may always refund.": "管理員隨時可退款。",
    "Language of the join and card pages": "加入與會員卡頁面的語言",
    "the visitor's browser": "依訪客的瀏覽器",
    "timezone must be an IANA time zone such as Asia/Taipei": (
        "時區必須是 IANA 時區名稱，例如 Asia/Taipei"
    ),
    "must be a time of day as HH:MM (00:00 to 23:59)": "請以 HH:MM 輸入時間（00:00 至 23:59）",
    "quiet hours must end at another time than they start; null means none": (
        "勿擾結束時間必須與開始時間不同；留空表示不設勿擾時段"
    ),
    "weekly_message_cap must be a whole number from 0 to 50": "每週訊息上限必須是 0 到 50 的整數",
    "refund_window_days must be a whole number from 0 to 365": "退款天數必須是 0 到 365 的整數",
    "max_points_per_scan must be a whole number from 1 to 10,000,000": (
        "單次點數上限必須是 1 到 10,000,000 的整數"
    ),
    # issue 11 [locations-keys-staff]
    "Location saved.": "據點已儲存。",
    "Location name": "據點名稱",
    "Key name": "金鑰名稱",
    "Keys are bound to this location: revoke them first.": "有金鑰綁定此據點：請先撤銷這些金鑰。",
    "Location deleted.": "據點已刪除。",
    "This is the last admin key: issue another admin key first.": (
        "這是最後一把管理員金鑰：請先建立另一把管理員金鑰。"
    ),
    "Key revoked.": "金鑰已撤銷。",
    "This is the last admin account: make another admin first.": (
        "這是最後一個管理員帳號：請先指定另一位管理員。"
    ),
    "Staff account saved.": "員工帳號已儲存。",
    "Staff account removed.": "員工帳號已移除。",
    "The two passwords differ.": "兩次輸入的密碼不同。",
    "Password saved. Welcome!": "密碼已設定，歡迎！",
    "Locations": "據點",
    "Your stores and tills. A scan can name its location, and a till's key can be bound to one;"
    " reports can be filtered by location.": (
        "您的門市與收銀台。掃描可註明據點，收銀台的金鑰可綁定據點；報表可依據點篩選。"
    ),
    "Edit location": "編輯據點",
    "New location": "新增據點",
    "Address": "地址",
    "Latitude": "緯度",
    "Degrees, e.g. 25.033964; give both or neither.": (
        "以度為單位，例如 25.033964；經緯度須同時填寫或皆不填。"
    ),
    "Longitude": "經度",
    "An IANA name such as Asia/Taipei; empty: the program's ({zone}).": (
        "IANA 時區名稱，例如 Asia/Taipei；空白則使用方案的時區（{zone}）。"
    ),
    "Save location": "儲存據點",
    "All locations": "所有據點",
    "No locations yet.": "尚無據點。",
    "API keys": "API 金鑰",
    "Keys let your tills and systems use walletd. Only a key's hash is kept: a new key is shown"
    " once, right here.": (
        "金鑰讓您的收銀台與系統使用 walletd。系統只保存金鑰的雜湊值：新金鑰僅在此顯示一次。"
    ),
    "Your new key": "您的新金鑰",
    "Copy it now and keep it safe: it cannot be shown again.": (
        "請立即複製並妥善保管：之後無法再次顯示。"
    ),
    "New key": "新增金鑰",
    "What the key is for, e.g. Till 1.": "金鑰的用途，例如「收銀台 1」。",
    "Role": "角色",
    "Cashier (scans and redemptions)": "收銀員（掃描與兌換）",
    "Admin (everything)": "管理員（全部權限）",
    "Location": "據點",
    "None": "無",
    "Create key": "建立金鑰",
    "All keys": "所有金鑰",
    "Key": "金鑰",
    "Last used": "最後使用",
    "Admin": "管理員",
    "Never": "從未",
    "Revoked": "已撤銷",
    "Revoke": "撤銷",
    "Staff": "員工",
    "Invite staff by e-mail: walletd makes a one-time link for them to choose a password (it"
    " sends no e-mail; pass the link on yourself). A changed role or a disabled account is"
    " logged out at once.": (
        "以電子郵件邀請員工：walletd 會產生一次性連結讓對方設定密碼（系統不寄送電子郵件，"
        "請自行轉交連結）。變更角色或停用帳號會立即登出該帳號。"
    ),
    "Set-password link for {email}": "{email} 的設定密碼連結",
    "Send this link to them. It works once, for 72 hours, and cannot be shown again.": (
        "請將此連結傳給對方。連結僅能使用一次、72 小時內有效，且無法再次顯示。"
    ),
    "Invite staff": "邀請員工",
    "Invite": "邀請",
    "All staff": "所有員工",
    "Last login": "最後登入",
    "Actions": "操作",
    "you": "您",
    "Invited": "已邀請",
    "Disabled": "已停用",
    "Enable": "啟用",
    "Disable": "停用",
    "New password link": "新的密碼連結",
    "No staff accounts yet.": "尚無員工帳號。",
    "Choose a password": "設定密碼",
    "For {email}. At least 10 characters; a few words you remember are best.": (
        "帳號 {email}。至少 10 個字元；用幾個您記得住的詞最好。"
    ),
    "New password": "新密碼",
    "The same password again": "再次輸入密碼",
    "Save password and log in": "儲存密碼並登入",
    "By": "執行者",
    "by {who}": "由 {who}",
    "by key {key}": "由金鑰 {key}",
    "This link is not valid any more": "此連結已失效",
    "Ask your admin for a new link: links work once, for 72 hours.": (
        "請向管理員索取新連結：連結僅能使用一次，72 小時內有效。"
    ),
    "a staff account with this e-mail already exists": "已有使用此電子郵件的員工帳號",
    "password must be at least 10 characters": "密碼至少須 10 個字元",
    "give both latitude and longitude, or neither": "經緯度須同時填寫或皆不填",
    "location_id is not a location of this brand": "此據點不屬於本品牌",
    "this is the brand's last admin account: it cannot be demoted": (
        "這是品牌最後一個管理員帳號，無法降級"
    ),
    "this is the brand's last admin account: it cannot be disabled": (
        "這是品牌最後一個管理員帳號，無法停用"
    ),
    # issue 11 [imports]
    "Import members": "匯入會員",
    (
        "Bring members from your previous loyalty system into {program}: their cards, "
        "consent, tier and points balance."
    ): "把舊會員系統的會員帶進 {program}：會員卡、行銷同意、等級與點數餘額。",
    "Upload a file": "上傳檔案",
    "CSV file (UTF-8, first row names the columns)": "CSV 檔（UTF-8，第一列為欄位名稱）",
    "At most 10 MB and 200,000 rows. Nothing is imported before you confirm the preview.": (
        "最多 10 MB、200,000 列。確認預覽之前不會匯入任何資料。"
    ),
    "Preview import": "預覽匯入",
    "Columns": "欄位",
    (
        "The member's number in your previous system. Importing the file again updates "
        "the same members."
    ): "會員在舊系統的編號。再次匯入同一個檔案會更新同一批會員。",
    "Required for new members.": "新會員必填。",
    "Members without an external id are found by e-mail, then by phone.": (
        "沒有外部編號的會員，先以電子郵件、再以電話比對。"
    ),
    "As YYYY-MM-DD.": "格式為 YYYY-MM-DD。",
    "yes or no (true/false, 1/0).": "yes 或 no（true/false、1/0）。",
    "Opening balance, written once per member; it expires like earned points.": (
        "期初點數，每位會員只寫入一次；與賺取的點數一樣會到期。"
    ),
    "The program has no tiers.": "此方案沒有等級。",
    "Recent imports": "最近的匯入",
    "File": "檔案",
    "Rows": "列數",
    "New": "新增",
    "Updated": "已更新",
    "No imports yet.": "尚未匯入過。",
    "Import": "匯入",
    "Progress": "進度",
    "{done} of {total} rows": "{total} 列中已處理 {done} 列",
    "This page refreshes itself until the import has finished.": "匯入完成前，本頁會自動重新整理。",
    (
        "The import stopped after repeated errors. Members imported so far stay; "
        "importing the file again continues where it stopped."
    ): "匯入因重複發生錯誤而停止。已匯入的會員會保留；再次匯入此檔案即可從中斷處繼續。",
    "New members": "新會員",
    "Members updated": "已更新的會員",
    "Unchanged": "未變更",
    "Rows with problems (skipped)": "有問題的列（已略過）",
    "Problems": "問題",
    "Import preview": "匯入預覽",
    "What importing {file} would do now. Nothing has been imported yet.": (
        "現在匯入 {file} 的結果預覽。尚未匯入任何資料。"
    ),
    "First rows": "前幾列",
    "Row": "列",
    "No row can be imported.": "沒有可以匯入的列。",
    "Import {count} members": "匯入 {count} 位會員",
    "New member": "新會員",
    "Update": "更新",
    "Importing": "匯入中",
    "Done": "完成",
    "Not started": "尚未開始",
    "Column": "欄位",
    "Problem": "問題",
    "The first {shown} of {total} problems.": "共 {total} 個問題，僅列出前 {shown} 個。",
    "No problems found.": "沒有發現問題。",
    "Choose a CSV file to import.": "請選擇要匯入的 CSV 檔。",
    "The file cannot be read.": "無法讀取此檔案。",
    "Import started.": "已開始匯入。",
    "a new member needs a name": "新會員必須有姓名",
    "not a valid e-mail address": "不是有效的電子郵件地址",
    "not a valid phone number": "不是有效的電話號碼",
    "not a date as YYYY-MM-DD": "不是 YYYY-MM-DD 格式的日期",
    "birthday must be a past date after 1900": "生日必須是 1900 年之後的過去日期",
    "use true or false (yes/no, 1/0)": "請填 true 或 false（yes/no、1/0）",
    "points must be a whole number from 0 to 1000000000": "點數必須是 0 到 1000000000 的整數",
    "the program has no tier of this name": "此方案沒有這個名稱的等級",
    "external id must be 1 to 100 characters without / or control characters": (
        "外部編號須為 1 到 100 個字元，不可含 / 或控制字元"
    ),
    "a row needs an external id, an e-mail or a phone": "每一列都需要外部編號、電子郵件或電話",
    "this external id is already on an earlier row": "前面的列已有這個外部編號",
    "this e-mail is already on an earlier row": "前面的列已有這個電子郵件",
    "this phone is already on an earlier row": "前面的列已有這個電話",
    "the row has more cells than the header": "這一列的欄位比標題列多",
    "a member must be an object": "每位會員必須是一個物件",
    "another member already has this e-mail": "其他會員已使用這個電子郵件",
    "another member already has this phone": "其他會員已使用這個電話",
    "the member found has another external id": "找到的會員已有不同的外部編號",
    "the value is too long": "內容太長",
    "the file is not UTF-8 text": "此檔案不是 UTF-8 文字",
    "the file holds NUL characters; it is not a CSV text file": (
        "此檔案含有 NUL 字元，不是 CSV 文字檔"
    ),
    "the file is empty; the first row must name the columns": "檔案是空的；第一列必須是欄位名稱",
    "a column is named twice": "有欄位名稱重複",
    "a column external_id, email or phone is required": "必須有 external_id、email 或 phone 欄位",
    "at most 200000 rows in one file": "一個檔案最多 200000 列",
    "send the file as text/csv or application/json": "請以 text/csv 或 application/json 傳送檔案",
    # issue 11 [webhooks]
    # issue 11 [events]
    # issue 12 [members]
    "You already have a card: this e-mail or phone is already a member's.": (
        "您已經有會員卡了：這個電子郵件或電話已經是會員的資料。"
    ),
    "Correct details": "修正會員資料",
    "(the member agreed)": "（會員已同意）",
    "Open the member who has it": "開啟擁有此資料的會員",
    "Save details": "儲存資料",
    "Another member already has this e-mail or phone.": "另一位會員已使用這個電子郵件或電話。",
    "Details saved.": "資料已儲存。",
    "Pages": "頁面",
    "Newest members": "最新的會員",
    "More members": "更多會員",
    "Newest entries": "最新的紀錄",
    "Older entries": "較早的紀錄",
    # issue 12 [erasure]
    "Promotional messages": "優惠訊息",
    "Your choice is saved.": "已儲存您的選擇。",
    "You receive offers and news from {brand} on your card.": (
        "您會在會員卡上收到 {brand} 的優惠與消息。"
    ),
    "You receive no offers or news. Messages about your points and rewards still come.": (
        "您不會收到優惠與消息；點數與獎勵的通知仍會送達。"
    ),
    "Stop promotional messages": "停止接收優惠訊息",
    "Receive promotional messages": "接收優惠訊息",
    "Erase this member…": "清除此會員…",
    "Erase member": "清除會員",
    "Erase {name}?": "清除 {name}？",
    "Erasing deletes this person's name, e-mail, phone, birthday and external id, their messages "
    "and the details of their events, and closes their card in Apple Wallet and Google Wallet. It "
    "cannot be undone.": (
        "清除會刪除此人的姓名、電子郵件、電話、生日與外部編號、他的訊息及事件詳情，"
        "並關閉他在 Apple 錢包與 Google 錢包中的會員卡。此動作無法復原。"
    ),
    "Their {points} points and {visits} visits stay in your reports, without a name.": (
        "他的 {points} 點與 {visits} 次消費仍保留在報表中，但不再有姓名。"
    ),
    "Export the member's data first if they asked for a copy.": (
        "若會員要求取得資料副本，請先匯出。"
    ),
    "I understand that this cannot be undone": "我了解此動作無法復原",
    "Tick the box to confirm.": "請勾選以確認。",
    "The member was erased. Their card is closed; their points stay in your reports.": (
        "已清除此會員。他的會員卡已關閉；點數仍保留在報表中。"
    ),
    # issue 12 [refunds]
    # issue 12 [messages]
    # issue 12 [feedback]
    "Rate your visit": "為這次消費評分",
    "Your visit on {day}": "您在 {day} 的消費",
    "This link has expired. Thank you all the same!": "此連結已過期，仍然謝謝您！",
    "Thank you! Your answer helps {brand} do better.": "謝謝您！您的回覆能幫助 {brand} 做得更好。",
    "This visit has already been rated. Thank you!": "這次消費已經評分過了，謝謝您！",
    "You rated this visit {n} of 5.": "您給這次消費 {n} 分（滿分 5 分）。",
    "How was your visit?": "這次消費的體驗如何？",
    "{n} of 5": "{n} 分（滿分 5 分）",
    "Excellent": "非常滿意",
    "Very good": "滿意",
    "Good": "普通",
    "Fair": "不太滿意",
    "Poor": "不滿意",
    "Anything you want to tell us?": "有什麼想告訴我們的嗎？",
    "Send my answer": "送出我的回覆",
    "choose 1 to 5 stars": "請選擇 1 到 5 顆星",
    "the comment must be text": "意見必須是文字",
    "the comment must be at most 1000 characters": "意見最多 1000 個字元",
    "comment must not contain control characters": "意見不可包含控制字元",
    "this visit has already been rated": "這次消費已經評分過了",
    "Feedback": "顧客評分",
    "How members rated their visits. The post-purchase message and the back of the card link to "
    "a short rating page; every answer sends the feedback.received webhook (low: 2 stars or "
    "fewer).": (
        "會員對消費的評分。消費後訊息與會員卡背面都連到簡短的評分頁；每則回覆都會送出 "
        "feedback.received webhook（low：2 顆星以下）。"
    ),
    "Choose a location from the list.": "請從清單選擇據點。",
    "Enter a date as YYYY-MM-DD.": "請以 YYYY-MM-DD 格式輸入日期。",
    "Show": "顯示",
    "Answers": "回覆數",
    "Average rating (of 5)": "平均評分（滿分 5 分）",
    "Average": "平均",
    "Ratings": "評分分布",
    "Stars": "星數",
    "Share": "比例",
    "By location": "各據點",
    "No location": "未指定據點",
    "No answers in this period.": "這段期間沒有回覆。",
    "Answers per day": "每日回覆數",
    "Answers per week": "每週回覆數",
    "Week from": "週起始日",
    "Latest comments": "最新意見",
    "No comments in this period.": "這段期間沒有意見。",
    "from must be a day from 1970-01-01 to 2999-12-31": (
        "起始日必須介於 1970-01-01 與 2999-12-31 之間"
    ),
    "to must be a day from 1970-01-01 to 2999-12-31": (
        "結束日必須介於 1970-01-01 與 2999-12-31 之間"
    ),
    "to must not be before from": "結束日不可早於起始日",
    "a report covers at most ten years": "報表最多涵蓋十年",
    "Event automations": "事件自動訊息",
    "Automation name": "自動訊息名稱",
    "Your e-shop or CRM reports what a member did (POST /api/v1/events). An event automation puts "
    "a message on the member's card some minutes later, unless a cancelling event or a purchase "
    "came first.": (
        "您的網路商店或 CRM 回報會員的行為（POST /api/v1/events）。事件自動訊息會在數分鐘後"
        "將訊息放上會員卡，除非在那之前收到取消事件或有消費。"
    ),
    "New event automation": "新增事件自動訊息",
    "Event that starts it": "觸發事件",
    "The event type your system sends, such as cart_abandoned.": (
        "您的系統送出的事件類型，例如 cart_abandoned。"
    ),
    "Wait (minutes, at most 43,200 = 30 days)": "等待時間（分鐘，最多 43,200 = 30 天）",
    "Events that cancel it": "取消事件",
    "Event types separated by commas, such as order_placed.": (
        "以逗號分隔的事件類型，例如 order_placed。"
    ),
    "A purchase in a shop cancels it": "門市消費即取消",
    "Placeholders: {name}, {points}, {tier}, and the event's properties such as "
    "{event.items.0.name} (the first item's name).": (
        "可用代入欄位：{name}、{points}、{tier}，以及事件屬性，例如 {event.items.0.name}"
        "（第一件商品的名稱）。"
    ),
    "Marketing message (needs consent, counts towards the weekly cap)": (
        "行銷訊息（需會員同意，計入每週上限）"
    ),
    "Save event automation": "儲存事件自動訊息",
    "All event automations": "所有事件自動訊息",
    "{event} → after {minutes} min": "{event} → {minutes} 分鐘後",
    "cancelled by {events}": "遇 {events} 取消",
    "or a purchase": "或有消費",
    "Sent {sent}, waiting {scheduled}, cancelled {cancelled}, skipped {skipped}": (
        "已送出 {sent}，等待中 {scheduled}，已取消 {cancelled}，已略過 {skipped}"
    ),
    "Switch off": "關閉",
    "Switch on": "開啟",
    "No event automations yet.": "尚無事件自動訊息。",
    "Event automation saved.": "事件自動訊息已儲存。",
    "Event automation switched on.": "事件自動訊息已開啟。",
    "Event automation switched off.": "事件自動訊息已關閉。",
    "Event automation deleted.": "事件自動訊息已刪除。",
    "delay_minutes must be 1 to 43200 (30 days)": "等待時間須為 1 至 43200 分鐘（30 天）",
    "trigger_event must be 1 to 64 characters of a-z, 0-9, _ and .": (
        "觸發事件須為 1 至 64 個 a-z、0-9、_ 或 . 字元"
    ),
    "cancel_events must be 1 to 64 characters of a-z, 0-9, _ and .": (
        "取消事件須為 1 至 64 個 a-z、0-9、_ 或 . 字元"
    ),
    "cancel_events must not include the trigger event": "取消事件不可包含觸發事件",
}
