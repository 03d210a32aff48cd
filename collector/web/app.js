// SPDX-License-Identifier: MIT
// mynaguard-collector web dashboard: logs in with a personal account (password + one-time code:
// an HttpOnly session cookie, and the CSRF token in X-CSRF-Token on every change) or takes a
// script token, pulls the API and renders it.
// Every string that came from a terminal goes into the page with textContent, never as markup.
'use strict';

(function () {
  const REFRESH_MS = 10000;
  const TOKEN_KEY = 'mynaguard.token';
  const LANG_KEY = 'mynaguard.lang';

  const I18N = {
    ja: {
      title: 'コンプライアンス ダッシュボード', refresh: '更新', export: 'CSV 出力', logout: 'ログアウト',
      login_title: 'ログイン', login: '表示する',
      login_help: 'コレクターの管理者から受け取ったトークンを入力してください。このタブを閉じると消去されます。',
      account_help: '個人アカウントの名前、パスワード、認証アプリの 6 桁の確認コードを入力してください。',
      account_name: '名前', account_password: 'パスワード', account_code: '確認コード', account_login: 'ログイン',
      token_title: 'スクリプト用トークン',
      login_wrong: '名前、パスワードまたは確認コードが違います。',
      login_locked: '失敗が続いたため、このアカウントはしばらくロックされています。',
      login_busy: 'ログインが集中しています。数秒後にもう一度お試しください。',
      role_admin: '管理者', role_approver: '承認者', role_auditor: '監査担当',
      token: 'スクリプト用トークン', total: '端末', compliant: '準拠', noncompliant: '非準拠', stale: '報告途絶',
      unknown: '未報告', terminals: '端末一覧', filter: '検索（端末・説明）',
      col_terminal: '端末', col_status: '状態', col_last_seen: '最終受信', col_failing: '不合格のチェック（開始）',
      col_usb: 'USB遮断 24h', col_auth: 'ログイン失敗 24h', col_policy: 'ポリシー', col_clock: '時刻',
      col_gaps: '欠番', col_check: 'チェック', col_clauses: '条項', col_since: 'この状態になった時刻',
      col_detail: '詳細', col_range: '範囲', col_detected: '検出', col_announced: '端末の通知',
      col_time: '時刻', col_kind: '種別', col_data: '内容', back: '一覧へ戻る', checks: 'チェック結果',
      gaps: '通番の欠落', recent: '最近のイベント', empty: 'まだ報告した端末はありません。',
      updated: '更新 ', footer: '情報セキュリティポリシー 2-6-3-a（持ち出し不可設定・多要素認証）、2-6-7（監視）、2-7（監査及び自己点検）の証跡',
      st_compliant: '準拠', st_noncompliant: '非準拠', st_unknown: '未報告', st_stale: '報告途絶',
      pass: '合格', fail: '不合格', error: 'エラー', not_applicable: '対象外', yes: 'あり', no: 'なし',
      drift: 'ずれ', ok: '正常', none: '—', unauthorized: 'トークンが正しくありません。',
      failed: 'コレクターに接続できません: ', first_seen: '初回受信', last_seen: '最終受信',
      last_compliance: '最終チェック報告', policy_hash: 'ポリシーハッシュ', report_interval: '報告間隔',
      seconds: '秒', last_seq: '最終通番', clock: '時刻のずれ', conflicts: '通番の衝突', ms: 'ミリ秒',
      unprivileged: '一般ユーザーからの通知（本人以外について。失敗ログインに数えない）',
      problem: '問題あり', events: 'イベント', failing_check: '不合格のチェック', all_checks: 'すべて',
      col_description: '説明（部署・席）', col_reason: '理由と対処', clear_filter: '絞り込みを解除',
      no_match: '条件に一致する端末はありません。', prev: '← 前へ', next: '次へ →',
      page_info: (p, n, m) => p + ' / ' + n + ' ページ（' + m + ' 台）',
      matched: (m, n) => n + ' 台中 ' + m + ' 台', all_events: 'この端末のイベント',
      from: '開始日', to: '終了日', no_events: '条件に一致するイベントはありません。',
      newest: '最新へ', older: 'さらに古いイベント →', all_kinds: 'すべて', raw: '元データ',
      locked: 'ロックアウト', gap_unannounced: '未通知の欠番', st_all: 'すべて', st_problem: '問題あり',
      sort_asc: '昇順', sort_desc: '降順',
      requests: '申請', exceptions: '例外', ledger: '媒体台帳', groups: 'グループ', totp: 'TOTP 登録',
      totp_title: '集中管理の TOTP 登録（閲覧のみ）', totp_help: '登録・失効・回復コードは mynaguardctl fleet totp で行います。',
      totp_user: '利用者', totp_groups: 'グループ', totp_since: '登録日時', totp_by: '登録者', totp_state: '状態',
      totp_revoked_at: '失効日時', totp_double: '二重使用', totp_st_pending: '確認待ち（コード未確認・端末へ未配布）', totp_st_active: '有効', totp_st_revoked: '失効', no_totp: '集中管理の TOTP 登録はありません。',
      totp_double_badge: '確認コードの二重使用',
      cert_badge: '証明書の期限切れ間近',
      cert_reason: '端末証明書の有効期限が近いか、切れています。端末の自動更新（mynaguard-uplink）が動いているか確認してください（mynaguardctl status）。',
      cert_not_after: '証明書の有効期限',
      totp_double_reason: '同じ確認コードが2台で使われました — 認証器の盗用の疑い。利用者に確認し、必要なら失効してください（mynaguardctl fleet totp revoke）。',
      retention: '保存期間', ret_title: 'ログの保存期間（種類ごと）', ret_period: '保存期間', ret_oldest: '保存中の最古の受信日時',
      ret_keep: '無期限', ret_last_run: '最終廃棄処理: ', ret_disposed: '、廃棄件数: ', ret_hold: '訴訟ホールド中の端末: ',
      ret_none_held: 'なし', ret_years: '年', ret_days: '日', ret_seconds: '秒',
      ledger_title: '記録媒体管理台帳', pending: '未処理の申請', decided: '処理済みの申請',
      col_device: '機器（ベンダー:製品）', col_product_name: '製品名', col_serial: 'シリアル', col_code: '申請コード',
      col_count: '回数', col_decision: '結果', col_decided: '処理日時', col_state: '状態', col_period: '期間',
      col_reason_short: '理由', col_ids: 'ID・シリアル', no_pending: '未処理の申請はありません。',
      decide_title: '申請の処理', grant: '許可（例外措置）', refuse: '却下', grant_do: '許可する', refuse_do: '却下する',
      cancel: '閉じる', decide: '処理', until: '終了日（この日を含む）', scope: '範囲', scope_terminal: 'この端末のみ',
      scope_group: 'グループ全体', purpose: '目的', ledger_no: '登録番号', approved_by: '承認者',
      grant_limit: (n, d) => '上限 ' + n + ' 日（' + d + ' まで）', granted: '許可', refused: '却下',
      st_pending: '未処理', granted_as: (id) => '例外 ' + id + ' として許可しました。',
      refused_done: '却下しました。', refused_error: '却下できません: ', grant_error: '許可できません: ',
      no_exceptions: '例外措置はありません。', active: '有効', revoked: '取消済み', ended: '期間終了', not_yet: '開始前',
      revoke: '取消', revoke_confirm: '取消を確定', revoke_reason: '取消の理由（任意）', revoke_done: (id) => '例外 ' + id + ' を取り消しました。',
      revoke_error: '取り消せません: ', users: '利用者',
      holder: '保管者', department: '所属', model: '型番', encrypted: '暗号化', lent: '貸出日', returned: '返却日',
      last_terminal: '最終確認端末', last_seen_at: '最終確認日時', note: '備考', no_ledger: '台帳に登録された媒体はありません。',
      import_title: 'CSV 取り込み', import_do: '取り込む',
      import_help: '書き出した CSV と同じ形式（見出し行つき、UTF-8）。1 行でも誤りがあれば何も変更しません。',
      imported: (n) => n + ' 件を取り込みました。', import_error: '取り込めません（何も変更していません）: ',
      add_title: '媒体の登録（同じ登録番号は置き換え）', add_do: '登録する', vendor_id: 'ベンダーID', product_id: 'プロダクトID',
      ledger_error: '登録できません: ',
      groups_help: '基本ポリシーはオフラインで署名し、mynaguardctl fleet で登録します。',
      no_groups: 'グループはまだありません。', base: '基本ポリシー', version: '版', issued: '発行', sha256: 'SHA-256',
      members: '端末', no_base: '基本ポリシー未登録', bundle_version: '配布版', covered: 'ポリシーの対象',
      max_days: '例外の上限日数', grant_classes: '許可できる種別', not_covered: '対象外（配布されません）',
      history: '履歴', days30: '30 日', days90: '90 日', check_history: 'チェックの履歴（90 日）',
      rate_title: '条項ごとの準拠率（その日に報告した端末のうち、条項のチェックが終日合格した割合）',
      usb_per_day: 'USB 遮断（1 日ごと）', auth_per_day: 'ログイン失敗（1 日ごと）',
      top_usb: 'USB 遮断の多い端末', top_auth: 'ログイン失敗の多い端末', no_history: 'この期間の記録はありません。',
      legend_pass: '合格', legend_fail: '不合格', legend_none: '報告なし', group: 'グループ',
      strip_tip: (c, d, st) => c + ' ' + d + ': ' + (st === 'pass' ? '合格' : st === 'fail' ? '不合格（クリックでその日の報告）' : '報告なし'),
      rate_tip: (c, d, ok, n) => c + ' ' + d + ': ' + n + ' 台中 ' + ok + ' 台が準拠' + (ok < n ? '（クリックで不合格の端末）' : ''),
      count_tip: (k, d, n) => d + ' ' + k + ' ' + n + ' 件（クリックでイベント）',
      top_tip: (k, term, n) => term + ': ' + k + ' ' + n + ' 件（クリックでイベント）',
      clause_chip: (c, d) => '条項 ' + c + ' を ' + d + ' に満たさなかった端末',
      history_range: (f, t) => f + ' 〜 ' + t + '（日本時間）', lowest: (p) => '最低 ' + p + '%',
      fleet_off: 'このコレクターではフリート管理（[fleet]）が設定されていません。申請・例外・媒体台帳・グループを使うには、設定ファイルに [fleet] を追加してください（mynaguard-collector(8) FLEET）。',
    },
    en: {
      title: 'Compliance dashboard', refresh: 'Refresh', export: 'Export CSV', logout: 'Log out',
      login_title: 'Log in', login: 'Show',
      login_help: 'Enter the token the collector administrator gave you. It is forgotten when this tab closes.',
      account_help: 'Enter your personal account\'s name, password and the 6-digit code of your authenticator app.',
      account_name: 'Name', account_password: 'Password', account_code: 'One-time code', account_login: 'Log in',
      token_title: 'Script token',
      login_wrong: 'Wrong name, password or code.',
      login_locked: 'Too many failures: this account is locked for a while.',
      login_busy: 'Too many logins at once: try again in a few seconds.',
      role_admin: 'administrator', role_approver: 'approver', role_auditor: 'auditor',
      token: 'Script token', total: 'Terminals', compliant: 'Compliant', noncompliant: 'Non-compliant', stale: 'Stale',
      unknown: 'No report yet', terminals: 'Terminals', filter: 'Search (terminal, description)',
      col_terminal: 'Terminal', col_status: 'Status', col_last_seen: 'Last seen', col_failing: 'Failing checks (since)',
      col_usb: 'USB blocked 24h', col_auth: 'Failed logins 24h', col_policy: 'Policy', col_clock: 'Clock',
      col_gaps: 'Gaps', col_check: 'Check', col_clauses: 'Clauses', col_since: 'In this state since',
      col_detail: 'Detail', col_range: 'Range', col_detected: 'Detected', col_announced: 'Announced by terminal',
      col_time: 'Time', col_kind: 'Kind', col_data: 'Data', back: 'Back to the list', checks: 'Checks',
      gaps: 'Sequence gaps', recent: 'Recent events', empty: 'No terminal has reported yet.',
      updated: 'Updated ', footer: 'Evidence for the information-security policy 2-6-3-a (no data carried out, multi-factor login), 2-6-7 (monitoring), 2-7 (audit and self-inspection)',
      st_compliant: 'Compliant', st_noncompliant: 'Non-compliant', st_unknown: 'No report', st_stale: 'Stale',
      pass: 'pass', fail: 'fail', error: 'error', not_applicable: 'n/a', yes: 'yes', no: 'no',
      drift: 'drift', ok: 'ok', none: '—', unauthorized: 'The token is not valid.',
      failed: 'Cannot reach the collector: ', first_seen: 'First seen', last_seen: 'Last seen',
      last_compliance: 'Last compliance report', policy_hash: 'Policy hash', report_interval: 'Report interval',
      seconds: 's', last_seq: 'Last seq', clock: 'Clock offset', conflicts: 'Seq conflicts', ms: 'ms',
      unprivileged: 'unprivileged sender (about another user; not counted as a failed login)',
      problem: 'Problems', events: 'Events', failing_check: 'Failing check', all_checks: 'any',
      col_description: 'Description (department, desk)', col_reason: 'Reason and what to do',
      clear_filter: 'Clear the filter', no_match: 'No terminal matches the filter.',
      prev: '← Previous', next: 'Next →',
      page_info: (p, n, m) => 'page ' + p + ' of ' + n + ' (' + m + ' terminals)',
      matched: (m, n) => m + ' of ' + n, all_events: 'Events of this terminal',
      from: 'From', to: 'To', no_events: 'No event matches the filter.',
      newest: 'Newest', older: 'Older events →', all_kinds: 'all', raw: 'raw data',
      locked: 'Locked out', gap_unannounced: 'Unannounced gap', st_all: 'All', st_problem: 'Problems',
      sort_asc: 'ascending', sort_desc: 'descending',
      requests: 'Requests', exceptions: 'Exceptions', ledger: 'Media ledger', groups: 'Groups', totp: 'TOTP enrollments',
      totp_title: 'Central TOTP enrollments (read-only)', totp_help: 'Enroll, revoke and issue recovery codes with mynaguardctl fleet totp.',
      totp_user: 'User', totp_groups: 'Groups', totp_since: 'Enrolled at', totp_by: 'Enrolled by', totp_state: 'State',
      totp_revoked_at: 'Revoked at', totp_double: 'Double uses', totp_st_pending: 'pending (no code verified, on no terminal)', totp_st_active: 'active', totp_st_revoked: 'revoked', no_totp: 'No central TOTP enrollment.',
      totp_double_badge: 'One-time code used twice',
      cert_badge: 'Certificate expiring',
      cert_reason: 'The terminal certificate expires soon or has expired. Check that the terminal renews it (mynaguard-uplink; mynaguardctl status).',
      cert_not_after: 'Certificate expires',
      totp_double_reason: 'The same one-time code was accepted on two terminals: the authenticator may be stolen. Ask the user and revoke the enrollment if needed (mynaguardctl fleet totp revoke).',
      retention: 'Retention', ret_title: 'Retention by event kind', ret_period: 'Period', ret_oldest: 'Oldest kept (received)',
      ret_keep: 'kept', ret_last_run: 'Last disposal run: ', ret_disposed: ', events disposed of: ', ret_hold: 'Terminals on legal hold: ',
      ret_none_held: 'none', ret_years: ' years', ret_days: ' days', ret_seconds: ' s',
      ledger_title: 'Removable media ledger', pending: 'Pending requests', decided: 'Decided requests',
      col_device: 'Device (vendor:product)', col_product_name: 'Product', col_serial: 'Serial', col_code: 'Request code',
      col_count: 'Count', col_decision: 'Decision', col_decided: 'Decided', col_state: 'State', col_period: 'Period',
      col_reason_short: 'Reason', col_ids: 'IDs, serial', no_pending: 'No pending request.',
      decide_title: 'Decide request', grant: 'Grant (exception)', refuse: 'Refuse', grant_do: 'Grant', refuse_do: 'Refuse',
      cancel: 'Close', decide: 'Decide', until: 'Until (inclusive)', scope: 'Scope', scope_terminal: 'This terminal',
      scope_group: 'Whole group', purpose: 'Purpose', ledger_no: 'Ledger no.', approved_by: 'Approved by',
      grant_limit: (n, d) => 'at most ' + n + ' days (until ' + d + ')', granted: 'granted', refused: 'refused',
      st_pending: 'pending', granted_as: (id) => 'Granted as exception ' + id + '.',
      refused_done: 'Refused.', refused_error: 'Cannot refuse: ', grant_error: 'Cannot grant: ',
      no_exceptions: 'No exception.', active: 'active', revoked: 'revoked', ended: 'ended', not_yet: 'not started',
      revoke: 'Revoke', revoke_confirm: 'Confirm revoke', revoke_reason: 'Reason (optional)', revoke_done: (id) => 'Exception ' + id + ' revoked.',
      revoke_error: 'Cannot revoke: ', users: 'Users',
      holder: 'Holder', department: 'Department', model: 'Model', encrypted: 'Encrypted', lent: 'Lent', returned: 'Returned',
      last_terminal: 'Last seen on', last_seen_at: 'Last seen at', note: 'Note', no_ledger: 'The ledger is empty.',
      import_title: 'Import CSV', import_do: 'Import',
      import_help: 'The same format as the export (with its header, UTF-8). One bad line and nothing is changed.',
      imported: (n) => n + ' rows imported.', import_error: 'Not imported (nothing changed): ',
      add_title: 'Register a medium (the same number is replaced)', add_do: 'Register', vendor_id: 'Vendor ID', product_id: 'Product ID',
      ledger_error: 'Cannot register: ',
      groups_help: 'Base policies are signed offline and uploaded with mynaguardctl fleet.',
      no_groups: 'No group yet.', base: 'Base policy', version: 'Version', issued: 'Issued', sha256: 'SHA-256',
      members: 'Terminals', no_base: 'no base policy yet', bundle_version: 'Bundle version', covered: 'Covered by the base',
      max_days: 'Exception limit (days)', grant_classes: 'Grantable classes', not_covered: 'not covered (gets no bundle)',
      history: 'History', days30: '30 days', days90: '90 days', check_history: 'Check history (90 days)',
      rate_title: 'Compliance per clause (of the terminals that reported that day, those whose checks of the clause passed all day)',
      usb_per_day: 'USB blocked per day', auth_per_day: 'Failed logins per day',
      top_usb: 'Top terminals: USB blocked', top_auth: 'Top terminals: failed logins', no_history: 'Nothing recorded in this period.',
      legend_pass: 'pass', legend_fail: 'fail', legend_none: 'no report', group: 'Group',
      strip_tip: (c, d, st) => c + ' ' + d + ': ' + (st === 'pass' ? 'pass' : st === 'fail' ? 'fail (click: that day\'s reports)' : 'no report'),
      rate_tip: (c, d, ok, n) => c + ' ' + d + ': ' + ok + ' of ' + n + ' compliant' + (ok < n ? ' (click: the failing terminals)' : ''),
      count_tip: (k, d, n) => d + ' ' + k + ': ' + n + ' (click: the events)',
      top_tip: (k, term, n) => term + ': ' + k + ' ' + n + ' (click: the events)',
      clause_chip: (c, d) => 'Terminals that failed clause ' + c + ' on ' + d,
      history_range: (f, t) => f + ' to ' + t + ' (Japan time)', lowest: (p) => 'lowest ' + p + '%',
      fleet_off: 'Fleet management ([fleet]) is not configured on this collector. Add a [fleet] section to its configuration to use requests, exceptions, the media ledger and groups (mynaguard-collector(8) FLEET).',
    },
  };

  // policy-clauses.md: the clauses a terminal can evidence.
  const CLAUSES = {
    '2-2-6': ['機密性：許可された者だけが情報にアクセスできる', 'Confidentiality: only those allowed can access information'],
    '2-2-7': ['完全性：情報が破壊・改ざん・消去されない', 'Integrity: information is not destroyed, altered or erased'],
    '2-2-8': ['可用性：必要な時に中断なくアクセスできる', 'Availability: authorized people can access it when needed'],
    '2-3-1': ['脅威：不正アクセス・内部不正・漏えい', 'Threats: unauthorized access, insider misconduct, leakage'],
    '2-3-2': ['脅威：情報資産の無断持ち出し・設定不備', 'Threats: unauthorized carrying out of information, misconfiguration'],
    '2-6-3-a': ['マイナンバー利用事務系：端末からの情報持ち出し不可設定・端末への多要素認証', 'My Number segment: no data carried out from terminals; multi-factor login on terminals'],
    '2-6-4': ['物理的セキュリティ（電磁的記録媒体の管理）', 'Physical security (removable media)'],
    '2-6-6': ['技術的セキュリティ：アクセス制御・不正プログラム対策', 'Technical security: access control, malware countermeasures'],
    '2-6-7': ['運用：情報システムの監視・ポリシー遵守状況の確認', 'Operations: monitoring, checking compliance with the policy'],
    '2-7': ['監査及び自己点検', 'Audit and self-inspection'],
    '2-8': ['監査結果を踏まえたポリシーの見直し', 'Review of the policy after audit'],
    '3-2-1': ['組織体制（CISO・情報システム管理者の役割）', 'Organisation and roles'],
  };

  const KINDS = {
    'usb.blocked': ['USB 遮断', 'USB blocked'], 'usb.allowed': ['USB 許可', 'USB allowed'],
    'usb.removed': ['USB 取り外し', 'USB removed'], 'auth.success': ['ログイン成功', 'Login success'],
    'auth.failure': ['ログイン失敗', 'Login failure'], 'auth.replay': ['コード再利用の拒否', 'Code replay refused'],
    'auth.locked': ['ロックアウト', 'Locked out'], 'agent.started': ['エージェント起動', 'Agent started'],
    'agent.stopped': ['エージェント停止', 'Agent stopped'], 'spool.dropped': ['スプール溢れ', 'Spool dropped events'],
    'compliance': ['チェック報告', 'Compliance report'],
    'account.login': ['ダッシュボードへのログイン', 'Dashboard login'],
    'account.login_failure': ['ダッシュボードのログイン失敗', 'Dashboard login failure'],
    'account.logout': ['ダッシュボードからのログアウト', 'Dashboard logout'],
    'account.created': ['アカウント作成・再設定', 'Account created or reset'],
    'account.disabled': ['アカウント無効化', 'Account disabled'],
    'account.token': ['スクリプト用トークン発行', 'Script token issued'],
  };

  const FLEET_VIEWS = ['requests', 'exceptions', 'ledger', 'groups', 'totp'];
  // views of other files (review.js): name -> { load(ctx) }, section NAME + 'view', link nav-NAME
  const EXTRA = () => window.mynaguardViews || {};
  const PAGE = 50;
  const EVENTS_PAGE = 100;

  let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'ja';
  let token = null; // a script token (Authorization: Bearer), or:
  let session = null; // the logged-in account: {name, role, csrf}; the cookie itself is HttpOnly
  const authed = () => token !== null || session !== null;
  let timer = null;
  let CHECKS = {}; // checks.json: id -> {name, reason, action}: [ja, en]
  let route = { view: 'terminals', params: new URLSearchParams(), id: null };
  let lastList = null;
  let searchTimer = null;
  let lastListHash = '#/terminals';

  const $ = (id) => document.getElementById(id);
  const t = (k) => I18N[lang][k] !== undefined ? I18N[lang][k] : k;
  // USB class names of the policy (policy/usb.c) in plain words, the id kept for the admin
  const USB_CLASS = {
    ja: { mass_storage: '記録媒体（USB メモリ・外付けディスク）', still_image: 'カメラ・スマートフォン（PTP）',
      mtp: 'スマートフォン（MTP）', printer: 'プリンタ', smart_card: 'IC カードリーダ', hid: 'キーボード・マウス',
      audio: 'オーディオ', video: 'カメラ（映像）', wireless: '無線（Bluetooth など）', cdc_net: 'ネットワーク接続',
      rndis: 'ネットワーク接続（RNDIS）', vendor_net: 'ネットワークアダプタ', adb: 'Android デバッグ（adb）',
      usbmux: 'iPhone 同期（usbmux）' },
    en: { mass_storage: 'storage (sticks, external disks)', still_image: 'cameras, phones (PTP)', mtp: 'phones (MTP)',
      printer: 'printers', smart_card: 'smart-card readers', hid: 'keyboards, mice', wireless: 'wireless (Bluetooth)',
      cdc_net: 'network', rndis: 'network (RNDIS)', vendor_net: 'network adapters', adb: 'Android debug (adb)',
      usbmux: 'iPhone sync (usbmux)' }
  };
  const usbClass = (c) => USB_CLASS[lang][c] ? USB_CLASS[lang][c] + ' [' + c + ']' : c;
  const L = (pair) => (pair ? pair[lang === 'ja' ? 0 : 1] : '');
  const pick = (table, key) => table[key] ? L(table[key]) : '';

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmtTime(iso) {
    if (!iso) return t('none');
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB', { hour12: false });
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
    const b = $('lang');
    b.textContent = lang === 'ja' ? 'English' : '日本語';
    b.lang = lang === 'ja' ? 'en' : 'ja';
    document.title = 'mynaguard — ' + t('title');
    fillSelects();
  }

  function fillSelects() {
    const cs = $('check-filter');
    const cur = cs.value;
    cs.replaceChildren(new Option(t('all_checks'), ''));
    Object.keys(CHECKS).filter((k) => k[0] !== '_').forEach((id) => cs.appendChild(new Option(L(CHECKS[id].name) + ' (' + id + ')', id)));
    cs.value = cur;
    const ks = $('ev-kind');
    const kcur = ks.value;
    ks.replaceChildren(new Option(t('all_kinds'), ''));
    Object.keys(KINDS).forEach((k) => ks.appendChild(new Option(L(KINDS[k]) + ' (' + k + ')', k)));
    ks.value = kcur;
  }

  function showError(msg) {
    const e = $('error');
    if (!msg) { e.hidden = true; e.textContent = ''; return; }
    e.textContent = msg;
    e.hidden = false;
  }

  function showLogin(msg) {
    token = null;
    session = null;
    showWho();
    sessionStorage.removeItem(TOKEN_KEY);
    $('main').hidden = true;
    $('login').hidden = false;
    showError(msg || '');
    if (timer) { clearInterval(timer); timer = null; }
  }

  // A token when there is one; else the session cookie goes by itself, and a change carries the
  // session's CSRF token (the collector also checks the Origin the browser adds).
  function authHeaders(change) {
    if (token !== null) return { Authorization: 'Bearer ' + token };
    return change && session ? { 'X-CSRF-Token': session.csrf } : {};
  }

  function showWho() {
    const w = $('who');
    w.textContent = session ? session.name + '（' + t('role_' + session.role) + '）' : '';
    w.hidden = !session;
  }

  async function api(path) {
    const r = await fetch(path, { headers: authHeaders(false), cache: 'no-store', credentials: 'same-origin' });
    if (r.status === 401) { const e = new Error('401'); e.unauthorized = true; throw e; }
    if (!r.ok) {
      let reason = r.status + '';
      let msg = null;
      try { msg = (await r.json()).error; } catch (_) { /* not JSON */ }
      if (msg) reason += ' ' + msg;
      const e = new Error(reason);
      e.status = r.status;
      e.reason = msg || reason;
      throw e;
    }
    return r;
  }

  // A change through the fleet API: JSON (or raw bytes with their type); the collector's reason on refusal.
  async function apiSend(method, path, body, ctype) {
    const headers = authHeaders(true);
    let data = body;
    if (body !== undefined && !ctype) { headers['Content-Type'] = 'application/json'; data = JSON.stringify(body); }
    else if (ctype) headers['Content-Type'] = ctype;
    const r = await fetch(path, { method, headers, body: data, cache: 'no-store', credentials: 'same-origin' });
    if (r.status === 401) { const e = new Error('401'); e.unauthorized = true; throw e; }
    let out = null;
    try { out = await r.json(); } catch (_) { /* no body */ }
    if (!r.ok) {
      const e = new Error((out && out.error) || String(r.status));
      e.status = r.status;
      e.reason = (out && out.error) || String(r.status);
      throw e;
    }
    return out;
  }

  // ---- routing: the fragment is the view; Back and bookmarks follow it ----

  function parseRoute() {
    const h = location.hash.replace(/^#/, '');
    const q = h.indexOf('?');
    const path = q < 0 ? h : h.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
    const m = /^\/terminal\/(.+)$/.exec(path);
    if (m) return { view: 'terminal', id: decodeURIComponent(m[1]), params };
    if (path === '/events') return { view: 'events', params };
    if (path === '/history') return { view: 'history', params };
    if (FLEET_VIEWS.includes(path.slice(1)) || EXTRA()[path.slice(1)]) return { view: path.slice(1), params };
    if (path === '/retention') return { view: 'retention', params };
    return { view: 'terminals', params };
  }

  function listHash(changes) {
    const p = new URLSearchParams(route.view === 'terminals' ? route.params : '');
    Object.entries(changes).forEach(([k, v]) => { if (v === null || v === '') p.delete(k); else p.set(k, v); });
    const s = p.toString();
    return '#/terminals' + (s ? '?' + s : '');
  }

  function eventsHash(changes, base) {
    const p = new URLSearchParams(base !== undefined ? base : (route.view === 'events' ? route.params : ''));
    Object.entries(changes).forEach(([k, v]) => { if (v === null || v === '') p.delete(k); else p.set(k, v); });
    const s = p.toString();
    return '#/events' + (s ? '?' + s : '');
  }

  const terminalHash = (id) => '#/terminal/' + encodeURIComponent(id);

  function go(hash, replace) {
    if (location.hash === hash) return;
    if (replace) { history.replaceState(null, '', hash); onRoute(); } else location.hash = hash;
  }

  function show(view) {
    $('list').hidden = view !== 'terminals';
    $('detail').hidden = view !== 'terminal';
    $('eventview').hidden = view !== 'events';
    $('historyview').hidden = view !== 'history';
    $('nav-events').classList.toggle('active', view === 'events');
    $('nav-history').classList.toggle('active', view === 'history');
    FLEET_VIEWS.concat(Object.keys(EXTRA())).forEach((v) => {
      $(v + 'view').hidden = view !== v;
      $('nav-' + v).classList.toggle('active', view === v);
    });
    $('retentionview').hidden = view !== 'retention';
    $('nav-retention').classList.toggle('active', view === 'retention');
    const fleet = FLEET_VIEWS.includes(view) || !!EXTRA()[view] || view === 'retention';
    $('nav-terminals').classList.toggle('active', view === 'terminals' || view === 'terminal');
    $('summary').hidden = view === 'events' || view === 'history' || fleet;
    if (!FLEET_VIEWS.includes(view)) $('fleet-off').hidden = true;
    // the header's CSV is the terminals' or the events'; the ledger has its own button, the
    // history's charts click through to lists that export
    $('export').hidden = fleet || view === 'history';
  }

  // ---- pieces ----

  function statusBadge(term) {
    const frag = document.createDocumentFragment();
    frag.appendChild(el('span', t('st_' + term.status), 'badge st-' + term.status));
    if (term.stale) frag.appendChild(el('span', t('st_stale'), 'badge st-stale'));
    if (term.locked_24h) frag.appendChild(el('span', t('locked'), 'badge st-noncompliant'));
    if (term.gaps_unannounced) frag.appendChild(el('span', t('gap_unannounced'), 'badge st-noncompliant'));
    if (term.totp_double_use) {
      const b = el('span', t('totp_double_badge'), 'badge st-noncompliant totp-double');
      b.title = t('totp_double_reason');
      frag.appendChild(b);
    }
    if (term.cert_expiring) {
      const b = el('span', t('cert_badge'), 'badge st-noncompliant cert-expiring');
      b.title = t('cert_reason');
      frag.appendChild(b);
    }
    return frag;
  }

  function clauseList(clauses) {
    const ul = el('ul', null, 'clauses');
    (clauses || []).forEach((c) => {
      const li = el('li');
      li.appendChild(el('code', c));
      const meaning = pick(CLAUSES, c);
      if (meaning) li.appendChild(el('span', ' ' + meaning, 'meaning'));
      ul.appendChild(li);
    });
    return ul;
  }

  function checkName(id) {
    const frag = document.createDocumentFragment();
    frag.appendChild(el('code', id));
    const c = CHECKS[id];
    if (c) frag.appendChild(el('div', L(c.name), 'meaning'));
    return frag;
  }

  // "時刻同期が確認できません — timesyncd の設定を確認"; the check id when the table lacks it
  function reasonText(id) {
    const c = CHECKS[id];
    return c ? L(c.reason) + ' — ' + L(c.action) : id;
  }

  function renderSummary(s) {
    $('n-total').textContent = s.total;
    $('n-compliant').textContent = s.compliant;
    $('n-noncompliant').textContent = s.noncompliant;
    $('n-stale').textContent = s.stale;
    $('n-unknown').textContent = s.unknown;
    $('n-problem').textContent = s.problem;
  }

  // ---- the terminal list ----

  function listQuery() {
    const p = route.params;
    const q = new URLSearchParams();
    ['status', 'sort', 'dir', 'q', 'check', 'clause', 'day'].forEach((k) => { if (p.get(k)) q.set(k, p.get(k)); });
    return q;
  }

  async function loadList() {
    const q = listQuery();
    const page = Math.max(1, parseInt(route.params.get('page') || '1', 10) || 1);
    q.set('page', page);
    q.set('limit', PAGE);
    const r = await api('/v1/terminals?' + q.toString());
    lastList = await r.json();
    renderSummary(lastList.summary);
    renderList(lastList, page);
    $('updated').textContent = t('updated') + fmtTime(lastList.generated_at);
  }

  function renderList(body, page) {
    const p = route.params;
    lastListHash = location.hash && location.hash.startsWith('#/terminals') ? location.hash : '#/terminals';
    const status = p.get('status') || 'all';
    document.querySelectorAll('#summary .card').forEach((c) => {
      const on = c.id === 'card-' + status;
      c.classList.toggle('active', on);
      c.setAttribute('aria-current', on ? 'true' : 'false');
    });
    $('list-status').textContent = t('st_' + status);
    // the history chart's click-through: a clause failed on a day
    const cd = p.get('clause') && p.get('day');
    $('list-clause').hidden = !cd;
    if (cd) $('list-clause-text').textContent = t('clause_chip')(p.get('clause'), p.get('day'));
    $('list-clause-clear').href = listHash({ clause: null, day: null, page: null });
    if (document.activeElement !== $('filter')) $('filter').value = p.get('q') || '';
    $('check-filter').value = p.get('check') || '';
    const sort = p.get('sort') || 'problem';
    const dir = p.get('dir') || 'asc';
    document.querySelectorAll('#terminals th button.sort').forEach((b) => {
      const on = b.dataset.sort === sort;
      b.parentElement.setAttribute('aria-sort', on ? (dir === 'asc' ? 'ascending' : 'descending') : 'none');
      b.dataset.arrow = on ? (dir === 'asc' ? '▲' : '▼') : '';
    });

    const rows = document.createDocumentFragment();
    body.terminals.forEach((term) => {
      const tr = el('tr', null, 'row st-' + term.status + (term.stale ? ' is-stale' : '') + (term.problem ? ' is-problem' : ''));
      tr.dataset.terminal = term.id;
      tr.tabIndex = 0;
      const idCell = el('td');
      const a = el('a', term.id, 'termlink');
      a.href = terminalHash(term.id);
      idCell.appendChild(a);
      tr.appendChild(idCell);
      tr.appendChild(el('td', term.description || '', 'desc'));
      const st = el('td');
      st.appendChild(statusBadge(term));
      tr.appendChild(st);
      tr.appendChild(el('td', fmtTime(term.last_seen)));
      const fc = el('td');
      if (term.failing.length === 0 && !term.totp_double_use && !term.cert_expiring) fc.textContent = t('none');
      if (term.totp_double_use) fc.appendChild(el('div', t('totp_double_reason'), 'failing totp-double-reason'));
      if (term.cert_expiring) fc.appendChild(el('div', t('cert_reason'), 'failing cert-reason'));
      term.failing.forEach((f) => {
        const d = el('div', null, 'failing');
        d.dataset.check = f.id;
        d.appendChild(el('span', reasonText(f.id), 'reason'));
        d.appendChild(el('span', ' (' + fmtTime(f.since) + ')', 'since'));
        d.title = f.id;
        fc.appendChild(d);
      });
      tr.appendChild(fc);
      tr.appendChild(el('td', term.usb_blocked_24h, 'num' + (term.usb_blocked_24h ? ' warn' : '')));
      tr.appendChild(el('td', term.auth_failures_24h, 'num' + (term.auth_failures_24h ? ' warn' : '')));
      const ph = el('td', term.policy_hash ? term.policy_hash.replace(/^sha256:/, '').slice(0, 12) : t('none'), 'hash');
      if (term.policy_hash) ph.title = term.policy_hash;
      tr.appendChild(ph);
      tr.appendChild(el('td', term.clock_drift ? t('drift') : t('ok'), term.clock_drift ? 'warn' : ''));
      tr.appendChild(el('td', term.gaps, 'num' + (term.gaps_unannounced ? ' warn' : '')));
      tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'A') go(terminalHash(term.id)); });
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(terminalHash(term.id)); });
      rows.appendChild(tr);
    });
    $('terminals').tBodies[0].replaceChildren(rows);

    // nothing reported at all, or nothing that matches: two different things to say
    const none = body.terminals.length === 0;
    $('empty').hidden = !none;
    $('terminals').hidden = none;
    const filtered = body.summary.total > 0;
    $('empty-text').textContent = filtered ? t('no_match') : t('empty');
    $('clear-filter').hidden = !filtered;
    $('matched').textContent = t('matched')(body.matched, body.summary.total);

    const pages = Math.max(1, Math.ceil(body.matched / PAGE));
    $('page-info').textContent = t('page_info')(page, pages, body.matched);
    const prev = $('prev'), next = $('next');
    prev.hidden = page <= 1;
    next.hidden = page >= pages;
    prev.href = listHash({ page: page - 1 > 1 ? page - 1 : null });
    next.href = listHash({ page: page + 1 });
    $('pager').hidden = pages <= 1;
  }

  function fact(dl, key, value) {
    dl.appendChild(el('dt', t(key)));
    dl.appendChild(el('dd', value));
  }

  // the raw JSON a user opened stays open across the 10 s refresh
  function openKeys(container) {
    return new Set(Array.from(container.querySelectorAll('[data-key]'))
      .filter((n) => n.querySelector('details[open]')).map((n) => n.dataset.key));
  }

  function eventRow(e, open) {
    const tr = el('tr', null, 'ev ev-' + e.kind.replace('.', '-'));
    tr.dataset.key = e.terminal + '/' + e.seq;
    tr.appendChild(el('td', e.seq, 'num'));
    tr.appendChild(el('td', fmtTime(e.ts)));
    const k = el('td');
    k.appendChild(el('code', e.kind));
    const kn = pick(KINDS, e.kind);
    if (kn) k.appendChild(el('div', kn, 'meaning'));
    // a non-root process reported about someone else: the agent marked it, say so
    const snd = e.data && e.data.sender;
    if (snd && snd.unprivileged === true) k.appendChild(el('div', t('unprivileged'), 'meaning warn'));
    tr.appendChild(k);
    tr.appendChild(el('td', (e.clause || []).join(' ')));
    const d = el('td', null, 'data');
    d.appendChild(el('div', sentence(e), 'line'));
    // the terminal's own data: shown as text, exactly as it arrived, one click away
    const raw = el('details');
    raw.appendChild(el('summary', t('raw')));
    raw.appendChild(el('pre', JSON.stringify(e.data, null, 1)));
    raw.open = open.has(tr.dataset.key);
    d.appendChild(raw);
    tr.appendChild(d);
    return tr;
  }

  function renderDetail(term) {
    $('detail-title').textContent = term.id;
    $('detail-status').replaceChildren(statusBadge(term));
    $('detail-events').href = eventsHash({ terminal: term.id }, '');
    const dl = $('detail-facts');
    dl.replaceChildren();
    if (term.description) fact(dl, 'col_description', term.description);
    fact(dl, 'first_seen', fmtTime(term.first_seen));
    fact(dl, 'last_seen', fmtTime(term.last_seen));
    fact(dl, 'last_compliance', fmtTime(term.last_compliance));
    fact(dl, 'policy_hash', term.policy_hash || t('none'));
    fact(dl, 'report_interval', term.report_interval_s + ' ' + t('seconds'));
    fact(dl, 'last_seq', term.last_seq);
    fact(dl, 'clock', term.clock_drift_ms + ' ' + t('ms') + (term.clock_drift ? ' (' + t('drift') + ')' : ''));
    fact(dl, 'col_usb', term.usb_blocked_24h);
    fact(dl, 'col_auth', term.auth_failures_24h);
    if (term.locked_24h) fact(dl, 'locked', term.locked_24h);
    if (term.totp_double_use) fact(dl, 'totp_double_badge', t('totp_double_reason'));
    if (term.cert_not_after) fact(dl, 'cert_not_after', fmtTime(term.cert_not_after) + (term.cert_expiring ? ' (' + t('cert_badge') + ')' : ''));
    if (term.seq_conflicts) fact(dl, 'conflicts', term.seq_conflicts);

    const checks = document.createDocumentFragment();
    term.checks.forEach((c) => {
      const tr = el('tr', null, 'check ck-' + c.status);
      const name = el('td');
      name.appendChild(checkName(c.id));
      tr.appendChild(name);
      const stc = el('td');
      stc.appendChild(el('span', t(c.status) || c.status, 'badge ck-' + c.status));
      tr.appendChild(stc);
      tr.appendChild(el('td', c.status === 'fail' || c.status === 'error' ? reasonText(c.id) : '', 'reason'));
      const cl = el('td');
      cl.appendChild(clauseList(c.clause));
      tr.appendChild(cl);
      tr.appendChild(el('td', fmtTime(c.since)));
      tr.appendChild(el('td', c.detail || ''));
      checks.appendChild(tr);
    });
    $('checks').tBodies[0].replaceChildren(checks);

    const gaps = document.createDocumentFragment();
    term.gap_list.forEach((g) => {
      const tr = el('tr', null, g.announced ? '' : 'warn');
      tr.appendChild(el('td', g.first === g.last ? String(g.first) : g.first + '–' + g.last));
      tr.appendChild(el('td', fmtTime(g.detected_at)));
      tr.appendChild(el('td', g.announced ? t('yes') : t('no')));
      gaps.appendChild(tr);
    });
    if (term.gap_list.length === 0) {
      const tr = el('tr');
      const td = el('td', t('none'));
      td.colSpan = 3;
      tr.appendChild(td);
      gaps.appendChild(tr);
    }
    $('gaps').tBodies[0].replaceChildren(gaps);

    const evs = document.createDocumentFragment();
    const open = openKeys($('events'));
    term.recent_events.forEach((e) => evs.appendChild(eventRow(Object.assign({ terminal: term.id }, e), open)));
    $('events').tBodies[0].replaceChildren(evs);
  }

  async function loadDetail(id) {
    const r = await api('/v1/terminals/' + encodeURIComponent(id));
    renderDetail(await r.json());
    const h = await api('/v1/terminals/' + encodeURIComponent(id) + '/history?days=90');
    renderStrip(id, await h.json());
  }

  // ---- history (charts.js): the terminal's strip, the fleet's charts ----

  const dayHash = (changes, d) => eventsHash(Object.assign({ since: d, until: d }, changes), '');

  function legend() {
    const p = el('p', null, 'legend');
    [['pass', 'legend_pass'], ['fail', 'legend_fail'], ['none', 'legend_none']].forEach(([c, k]) => {
      p.appendChild(el('span', null, 'swatch ' + c));
      p.appendChild(el('span', t(k) + ' '));
    });
    return p;
  }

  function renderStrip(id, h) {
    const rows = h.checks.map((c) => ({ id: c.id, days: c.days, label: (CHECKS[c.id] ? L(CHECKS[c.id].name) : c.id) }));
    const box = $('detail-history');
    if (!rows.length) { box.replaceChildren(el('p', t('no_history'), 'empty')); return; }
    const chart = MgCharts.strip(rows, h.dates, {
      label: t('check_history') + ' ' + id,
      href: (check, d) => dayHash({ terminal: id, kind: 'compliance' }, d),
      title: (check, d, st) => t('strip_tip')(check, d, st),
    });
    box.replaceChildren(el('p', t('history_range')(h.from, h.to), 'meaning'), chart, legend());
  }

  async function loadHistory() {
    const days = route.params.get('days') === '90' ? 90 : 30;
    $('hist-30').classList.toggle('active', days === 30);
    $('hist-90').classList.toggle('active', days === 90);
    const [cl, ac] = await Promise.all([
      api('/v1/clauses?days=' + days).then((r) => r.json()),
      api('/v1/activity?days=' + days).then((r) => r.json())]);
    $('hist-range').textContent = t('history_range')(cl.from, cl.to);
    const width = Math.min(1300, Math.max(700, $('historyview').clientWidth - 10));
    const rows = cl.clauses.map((c) => Object.assign({ label: pick(CLAUSES, c.clause) }, c));
    $('hist-rates').replaceChildren(rows.length ? MgCharts.rates(rows, cl.dates, {
      width, label: t('rate_title'), lowest: (p) => t('lowest')(p),
      href: (clause, d) => listHash({ clause, day: d, status: null, page: null, q: null, check: null }),
      title: (clause, d, ok, n) => t('rate_tip')(clause, d, ok, n),
    }) : el('p', t('no_history'), 'empty'));
    const half = Math.max(340, Math.floor(width / 2) - 20);
    [['usb.blocked', 'usb_blocked', 'hist-usb', 'usb'], ['auth.failure', 'auth_failure', 'hist-auth', 'auth']].forEach(([kind, key, id, cls]) => {
      $(id).replaceChildren(MgCharts.bars(ac[key], ac.dates, {
        width: half, label: t(cls === 'usb' ? 'usb_per_day' : 'auth_per_day'), cls,
        href: (d) => dayHash({ kind }, d),
        title: (d, n) => t('count_tip')(pick(KINDS, kind), d, n),
      }));
      const top = ac.top[key];
      $(id + '-top').replaceChildren(top.length ? MgCharts.top(top, {
        width: half, label: t(cls === 'usb' ? 'top_usb' : 'top_auth'), cls,
        href: (term) => eventsHash({ kind, terminal: term, since: ac.from, until: ac.to }, ''),
        title: (term, n) => t('top_tip')(pick(KINDS, kind), term, n),
      }) : el('p', t('no_history'), 'empty'));
    });
    $('updated').textContent = t('updated') + fmtTime(new Date().toISOString());
  }

  // ---- events: one readable line each (who, what, where, which rule) ----

  const S = (v) => (v === undefined || v === null || v === '' ? null : String(v));
  const Z = (v) => S(v) || '';

  function usbDevice(d) {
    const name = [S(d.manufacturer), S(d.product_name)].filter(Boolean).join(' ');
    const ids = (S(d.vendor) || '?') + ':' + (S(d.product) || '?');
    const cls = Array.isArray(d.classes) && d.classes.length ? d.classes.join(',') : null;
    if (lang === 'ja') return (name ? name + '（' + ids + '）' : ids) + (cls ? ' クラス ' + cls : '') + (S(d.port) ? ' ポート ' + d.port : '');
    return (name ? name + ' (' + ids + ')' : ids) + (cls ? ' class ' + cls : '') + (S(d.port) ? ' port ' + d.port : '');
  }

  function sentence(e) {
    const d = (e.data && typeof e.data === 'object') ? e.data : {};
    const ja = lang === 'ja';
    const user = S(d.user) || (ja ? '（利用者不明）' : '(unknown user)');
    const via = [S(d.service), S(d.tty), S(d.rhost)].filter(Boolean).join(' ');
    const rule = S(d.rule);
    switch (e.kind) {
      case 'usb.blocked':
        if (d.audit === true) return ja ? 'USB 機器 ' + usbDevice(d) + ' を検知（監査モードのため遮断せず記録）' : 'USB device ' + usbDevice(d) + ' seen (audit mode: recorded, not blocked)';
        return ja ? 'USB 機器 ' + usbDevice(d) + ' を遮断' + (rule ? '（規則: ' + rule + '）' : '') : 'blocked USB device ' + usbDevice(d) + (rule ? ' (rule: ' + rule + ')' : '');
      case 'usb.allowed':
        return ja ? 'USB 機器 ' + usbDevice(d) + ' を許可' + (rule ? '（規則: ' + rule + '）' : '') : 'allowed USB device ' + usbDevice(d) + (rule ? ' (rule: ' + rule + ')' : '');
      case 'usb.removed':
        return ja ? 'USB 機器 ' + usbDevice(d) + ' が取り外されました' : 'USB device ' + usbDevice(d) + ' removed';
      case 'auth.success':
        return ja ? user + ' がログインしました' + (via ? '（' + via + '）' : '') : user + ' logged in' + (via ? ' (' + via + ')' : '');
      case 'auth.failure':
        return ja ? user + ' のログインに失敗しました' + (via ? '（' + via + '）' : '') + (S(d.reason) ? ' 理由: ' + d.reason : '')
          : 'failed login for ' + user + (via ? ' (' + via + ')' : '') + (S(d.reason) ? ', reason: ' + d.reason : '');
      case 'auth.replay':
        return ja ? user + ' の使用済みワンタイムコードを拒否しました' + (via ? '（' + via + '）' : '') : 'refused a reused one-time code for ' + user + (via ? ' (' + via + ')' : '');
      case 'auth.locked':
        return ja ? user + ' がコードの入力誤りでロックアウトされました' + (via ? '（' + via + '）' : '') : user + ' was locked out after wrong codes' + (via ? ' (' + via + ')' : '');
      case 'agent.started':
        return ja ? 'エージェント ' + (S(d.version) || '') + ' が起動しました' : 'agent ' + (S(d.version) || '') + ' started';
      case 'agent.stopped':
        return ja ? 'エージェントが停止しました' + (S(d.signal) ? '（' + d.signal + '）' : '') : 'agent stopped' + (S(d.signal) ? ' (' + d.signal + ')' : '');
      case 'spool.dropped': {
        const range = d.first_seq !== undefined ? d.first_seq + '–' + d.last_seq : null;
        return ja ? (S(d.count) || '?') + ' 件のイベントが失われました' + (range ? '（通番 ' + range + '）' : '') + (S(d.reason) ? ' 理由: ' + d.reason : '')
          : (S(d.count) || '?') + ' events lost' + (range ? ' (seq ' + range + ')' : '') + (S(d.reason) ? ', reason: ' + d.reason : '');
      }
      case 'compliance': {
        const checks = Array.isArray(d.checks) ? d.checks : [];
        const bad = checks.filter((c) => c && (c.status === 'fail' || c.status === 'error'));
        if (!bad.length) return ja ? 'チェック報告: 全 ' + checks.length + ' 項目合格' : 'compliance report: all ' + checks.length + ' checks pass';
        return (ja ? 'チェック報告: 不合格 ' + bad.length + ' 項目 — ' : 'compliance report: ' + bad.length + ' failing — ') + bad.map((c) => reasonText(c.id)).join('; ');
      }
      case 'account.login':
        return ja ? Z(d.name) + '（' + t('role_' + d.role) + '）がダッシュボードにログインしました（' + Z(d.peer) + '）' : Z(d.name) + ' (' + t('role_' + d.role) + ') logged in to the dashboard (' + Z(d.peer) + ')';
      case 'account.login_failure': {
        const why = { wrong: ja ? '名前・パスワード・コードの誤り' : 'wrong name, password or code', replay: ja ? '使用済みコード' : 'reused code', locked: ja ? 'ロック中' : 'locked' }[d.reason] || Z(d.reason);
        return ja ? (S(d.name) || '（不明な名前）') + ' のダッシュボードへのログインに失敗しました（' + why + '、' + Z(d.peer) + '）' : 'failed dashboard login for ' + (S(d.name) || '(unknown name)') + ' (' + why + ', ' + Z(d.peer) + ')';
      }
      case 'account.logout':
        return ja ? Z(d.name) + ' がダッシュボードからログアウトしました' : Z(d.name) + ' logged out of the dashboard';
      case 'account.created':
        return d.action === 'reset' ? (ja ? Z(d.by) + ' が ' + Z(d.name) + ' のパスワードと確認コードを再設定しました' : Z(d.by) + ' reset the password and code of ' + Z(d.name))
          : (ja ? Z(d.by) + ' がアカウント ' + Z(d.name) + '（' + t('role_' + d.role) + '）を作成しました' : Z(d.by) + ' created the account ' + Z(d.name) + ' (' + t('role_' + d.role) + ')');
      case 'account.disabled':
        return ja ? Z(d.by) + ' がアカウント ' + Z(d.name) + ' を無効にしました' : Z(d.by) + ' disabled the account ' + Z(d.name);
      case 'account.token':
        return ja ? Z(d.by) + ' が ' + Z(d.name) + ' にスクリプト用トークン（' + t('role_' + d.scope) + '）を発行しました' : Z(d.by) + ' issued a script token (' + t('role_' + d.scope) + ') to ' + Z(d.name);
      default:
        return e.kind;
    }
  }

  function eventQuery() {
    const p = route.params;
    const q = new URLSearchParams({ order: 'newest', limit: EVENTS_PAGE });
    ['kind', 'terminal', 'group', 'after'].forEach((k) => { if (p.get(k)) q.set(k, p.get(k)); });
    // dates are days in Japan (as the history's and the fleet's): from the start of "since" to
    // the end of "until"
    const jst = (ymd) => new Date(ymd + 'T00:00:00+09:00');
    if (p.get('since') && !isNaN(jst(p.get('since')))) q.set('since', jst(p.get('since')).toISOString().replace('.000Z', 'Z'));
    if (p.get('until') && !isNaN(jst(p.get('until')))) q.set('until', new Date(jst(p.get('until')).getTime() + DAY).toISOString().replace('.000Z', 'Z'));
    return q;
  }

  async function loadEvents() {
    const p = route.params;
    $('ev-kind').value = p.get('kind') || '';
    if (document.activeElement !== $('ev-terminal')) $('ev-terminal').value = p.get('terminal') || '';
    if (document.activeElement !== $('ev-group')) $('ev-group').value = p.get('group') || '';
    $('ev-since').value = p.get('since') || '';
    $('ev-until').value = p.get('until') || '';
    const r = await api('/v1/events?' + eventQuery().toString());
    const body = await r.json();
    const list = document.createDocumentFragment();
    const open = openKeys($('event-list'));
    body.events.forEach((e) => {
      const li = el('li', null, 'evline ev-' + e.kind.replace('.', '-'));
      li.dataset.kind = e.kind;
      li.dataset.key = e.terminal + '/' + e.seq;
      const head = el('div', null, 'evhead');
      head.appendChild(el('time', fmtTime(e.ts)));
      const term = el('a', e.terminal, 'termlink');
      term.href = terminalHash(e.terminal);
      head.appendChild(term);
      head.appendChild(el('span', pick(KINDS, e.kind) || e.kind, 'badge kind'));
      li.appendChild(head);
      li.appendChild(el('div', sentence(e), 'line'));
      const cl = (e.clause || []).map((c) => c + (pick(CLAUSES, c) ? ' ' + pick(CLAUSES, c) : '')).join(' / ');
      if (cl) li.appendChild(el('div', (lang === 'ja' ? '条項: ' : 'Clause: ') + cl, 'meaning rule'));
      const snd = e.data && e.data.sender;
      if (snd && snd.unprivileged === true) li.appendChild(el('div', t('unprivileged'), 'meaning warn'));
      const raw = el('details', null, 'raw');
      raw.appendChild(el('summary', t('raw')));
      raw.appendChild(el('pre', JSON.stringify({ terminal: e.terminal, seq: e.seq, ts: e.ts, received_at: e.received_at, kind: e.kind, clause: e.clause, data: e.data }, null, 1)));
      raw.open = open.has(li.dataset.key);
      li.appendChild(raw);
      list.appendChild(li);
    });
    $('event-list').replaceChildren(list);
    $('ev-empty').hidden = body.events.length !== 0;
    $('ev-next').hidden = !body.next;
    if (body.next) $('ev-next').href = eventsHash({ after: body.next });
    $('ev-first').hidden = !p.get('after');
    $('ev-first').href = eventsHash({ after: null });
    $('updated').textContent = t('updated') + fmtTime(new Date().toISOString());
  }

  // ---- fleet (docs/fleet.md): requests, exceptions, the media ledger, groups ----

  let fleetGroups = {}; // terminal -> {group, max_days} from the groups' bases
  let decideFor = null; // the request the decide panel is open for

  const DAY = 86400000;
  // Today in Japan as YYYY-MM-DD: the collector reads a bare day as a day in Japan (UTC+9).
  const jpToday = () => new Date(Date.now() + 9 * 3600000).toISOString().slice(0, 10);
  const addDays = (ymd, n) => new Date(Date.parse(ymd + 'T00:00:00Z') + n * DAY).toISOString().slice(0, 10);
  // The end of the fiscal year (3/31) that holds this day.
  const fiscalEnd = (ymd) => (Number(ymd.slice(5, 7)) >= 4 ? Number(ymd.slice(0, 4)) + 1 : Number(ymd.slice(0, 4))) + '-03-31';
  const dev = (o) => o.vendor + ':' + o.product;

  function fleetMessage(id, msg, prefix) {
    const p = $(id);
    if (!msg) { p.hidden = true; p.textContent = ''; return; }
    p.textContent = (prefix || '') + msg;
    p.hidden = false;
  }

  function emptyRow(tbody, cols, text) {
    const tr = el('tr');
    const td = el('td', text);
    td.colSpan = cols;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  async function loadGroupsMap() {
    const gs = (await (await api('/v1/groups')).json()).groups;
    const map = {};
    const details = await Promise.all(gs.map(async (g) => (await api('/v1/groups/' + encodeURIComponent(g.name))).json()));
    details.forEach((g) => g.members.forEach((m) => {
      map[m.terminal] = { group: g.name, max_days: g.base ? g.base.grant_max_days : null };
    }));
    fleetGroups = map;
    return { gs, details };
  }

  async function loadFleet(view) {
    try {
      if (view === 'requests') await loadRequests();
      else if (view === 'exceptions') await loadExceptions();
      else if (view === 'ledger') await loadLedger();
      else if (view === 'totp') await loadTotp();
      else await loadGroups();
      // a load that ends after the user went on (the language switch refreshes) shows nothing
      if (route.view !== view) return;
      $('fleet-off').hidden = true;
      $(view + 'view').hidden = false;
      $('updated').textContent = t('updated') + fmtTime(new Date().toISOString());
    } catch (e) {
      if (e.status !== 503) throw e;
      // no [fleet] on this collector: say so instead of an error
      $(view + 'view').hidden = true;
      $('fleet-off').textContent = t('fleet_off');
      $('fleet-off').hidden = false;
    }
  }

  function requestRow(r) {
    const tr = el('tr', null, 'req');
    tr.dataset.code = r.code;
    tr.appendChild(el('td', r.terminal));
    tr.appendChild(el('td', dev(r), 'hash'));
    tr.appendChild(el('td', [r.manufacturer, r.product_name].filter(Boolean).join(' ') || t('none')));
    tr.appendChild(el('td', r.serial || t('none'), 'hash'));
    tr.appendChild(el('td', r.code, 'hash code'));
    return tr;
  }

  async function loadRequests() {
    const [list] = await Promise.all([api('/v1/requests?state=all').then((r) => r.json()), loadGroupsMap()]);
    const reqs = list.requests;
    const pend = document.createDocumentFragment();
    const done = document.createDocumentFragment();
    reqs.filter((r) => r.state === 'pending').forEach((r) => {
      const tr = requestRow(r);
      tr.appendChild(el('td', fmtTime(r.first_seen)));
      tr.appendChild(el('td', fmtTime(r.last_seen)));
      tr.appendChild(el('td', r.count, 'num'));
      const td = el('td');
      const b = el('button', t('decide'), 'decide');
      b.type = 'button';
      b.addEventListener('click', () => openDecide(r));
      td.appendChild(b);
      tr.appendChild(td);
      pend.appendChild(tr);
    });
    reqs.filter((r) => r.state !== 'pending').forEach((r) => {
      const tr = requestRow(r);
      tr.removeChild(tr.children[2]); // the decided table has no product-name column
      const st = el('td');
      st.appendChild(el('span', t(r.state), 'badge ' + (r.state === 'granted' ? 'ck-pass' : 'ck-fail')));
      tr.appendChild(st);
      tr.appendChild(el('td', fmtTime(r.decided_at) + (r.decided_by ? ' ' + r.decided_by : '')));
      tr.appendChild(el('td', r.state === 'granted' ? (r.exception || '') : (r.reason || '')));
      done.appendChild(tr);
    });
    const npend = pend.childNodes.length;
    if (!done.childNodes.length) emptyRow(done, 7, t('none'));
    $('req-pending').tBodies[0].replaceChildren(pend);
    $('req-decided').tBodies[0].replaceChildren(done);
    $('req-none').hidden = npend !== 0;
    $('req-pending').hidden = npend === 0;
    if (decideFor) updateLimit();
  }

  function updateLimit() {
    const g = decideFor && fleetGroups[decideFor.terminal];
    const from = $('grant-from').value || jpToday();
    $('grant-limit').textContent = g && g.max_days ? t('grant_limit')(g.max_days, addDays(from, g.max_days - 1)) : '';
  }

  function openDecide(r) {
    decideFor = r;
    $('decide-code').textContent = r.code;
    $('decide-device').textContent = r.terminal + ' ' + dev(r) + (r.serial ? ' ' + r.serial : '');
    // from today to the end of the fiscal year, never beyond the group's limit
    const from = jpToday();
    let until = fiscalEnd(from);
    const g = fleetGroups[r.terminal];
    if (g && g.max_days) {
      const last = addDays(from, g.max_days - 1);
      if (last < until) until = last;
    }
    $('grant-from').value = from;
    $('grant-until').value = until;
    $('grant-scope').value = 'terminal';
    $('grant-purpose').value = '';
    $('grant-ledger').value = '';
    $('refuse-reason').value = '';
    fleetMessage('grant-error', '');
    fleetMessage('refuse-error', '');
    fleetMessage('decide-done', '');
    updateLimit();
    $('decide').hidden = false;
    $('decide').scrollIntoView({ block: 'nearest' });
    $('grant-purpose').focus();
  }

  function closeDecide() {
    decideFor = null;
    $('decide').hidden = true;
  }

  async function submitGrant(ev) {
    ev.preventDefault();
    if (!decideFor) return;
    const body = { from: $('grant-from').value, until: $('grant-until').value, scope: $('grant-scope').value,
      purpose: $('grant-purpose').value.trim() };
    if ($('grant-ledger').value.trim()) body.ledger = $('grant-ledger').value.trim();
    fleetMessage('grant-error', '');
    try {
      const x = await apiSend('POST', '/v1/requests/' + encodeURIComponent(decideFor.code) + '/grant', body);
      closeDecide();
      fleetMessage('decide-done', t('granted_as')(x.id));
      await refresh();
    } catch (e) {
      if (e.unauthorized) handleError(e);
      else fleetMessage('grant-error', e.reason || e.message, t('grant_error'));
    }
  }

  async function submitRefuse(ev) {
    ev.preventDefault();
    if (!decideFor) return;
    fleetMessage('refuse-error', '');
    try {
      await apiSend('POST', '/v1/requests/' + encodeURIComponent(decideFor.code) + '/refuse', { reason: $('refuse-reason').value.trim() });
      closeDecide();
      fleetMessage('decide-done', t('refused_done'));
      await refresh();
    } catch (e) {
      if (e.unauthorized) handleError(e);
      else fleetMessage('refuse-error', e.reason || e.message, t('refused_error'));
    }
  }

  function exceptionState(x) {
    const now = Date.now();
    if (x.state !== 'active') return x.state;
    if (x.until && Date.parse(x.until) <= now) return 'ended';
    if (x.from && Date.parse(x.from) > now) return 'not_yet';
    return 'active';
  }

  // the last day an exception covers ("until" is the start of the day after, in Japan)
  const lastDay = (iso) => new Date(Date.parse(iso) + 9 * 3600000 - 1).toISOString().slice(0, 10);
  const firstDay = (iso) => new Date(Date.parse(iso) + 9 * 3600000).toISOString().slice(0, 10);

  async function loadExceptions() {
    const xs = (await (await api('/v1/exceptions?state=all')).json()).exceptions;
    const open = new Set(Array.from(document.querySelectorAll('#exc-table tr.confirming')).map((tr) => tr.dataset.id));
    const st = (x) => exceptionState(x);
    // active first, then the ended and revoked, each in id order
    const order = (x) => (st(x) === 'active' ? 0 : st(x) === 'not_yet' ? 1 : 2);
    const rows = document.createDocumentFragment();
    xs.slice().sort((a, b) => order(a) - order(b)).forEach((x) => {
      const s = st(x);
      const tr = el('tr', null, 'exc ex-' + s);
      tr.dataset.id = x.id;
      tr.appendChild(el('td', x.id, 'hash'));
      const std = el('td');
      std.appendChild(el('span', t(s), 'badge ' + (s === 'active' ? 'ck-pass' : s === 'revoked' ? 'ck-fail' : 'ck-not_applicable')));
      if (s === 'revoked') std.appendChild(el('div', fmtTime(x.revoked_at) + (x.revoke_reason ? ' ' + x.revoke_reason : ''), 'since'));
      tr.appendChild(std);
      const d = el('td');
      d.appendChild(el('div', dev(x) + ' ' + (x.serial || ''), 'hash'));
      d.appendChild(el('div', x.class || '', 'meaning'));
      tr.appendChild(d);
      tr.appendChild(el('td', x.scope === 'group' ? t('scope_group') + ' ' + x.group : x.terminal));
      tr.appendChild(el('td', (x.from ? firstDay(x.from) : '') + ' – ' + (x.until ? lastDay(x.until) : '')));
      tr.appendChild(el('td', x.purpose || ''));
      tr.appendChild(el('td', x.approved_by || ''));
      tr.appendChild(el('td', x.ledger || t('none')));
      const act = el('td', null, 'actions');
      if (x.state === 'active') {
        const b = el('button', t('revoke'), 'revoke');
        b.type = 'button';
        const box = el('span', null, 'confirm');
        const reason = el('input');
        reason.type = 'text';
        reason.placeholder = t('revoke_reason');
        reason.maxLength = 256;
        reason.className = 'revoke-reason';
        const yes = el('button', t('revoke_confirm'), 'danger revoke-yes');
        yes.type = 'button';
        const no = el('button', t('cancel'), 'revoke-no');
        no.type = 'button';
        box.append(reason, yes, no);
        box.hidden = !open.has(x.id);
        if (open.has(x.id)) tr.classList.add('confirming');
        b.hidden = open.has(x.id);
        b.addEventListener('click', () => { box.hidden = false; b.hidden = true; tr.classList.add('confirming'); reason.focus(); });
        no.addEventListener('click', () => { box.hidden = true; b.hidden = false; tr.classList.remove('confirming'); });
        yes.addEventListener('click', () => revokeException(x.id, reason.value.trim()));
        act.append(b, box);
      }
      tr.appendChild(act);
      rows.appendChild(tr);
    });
    // a refresh does not close a confirmation being typed
    if (document.activeElement && document.activeElement.classList.contains('revoke-reason')) return;
    $('exc-table').tBodies[0].replaceChildren(rows);
    $('exc-none').hidden = xs.length !== 0;
    $('exc-table').hidden = xs.length === 0;
  }

  async function revokeException(id, reason) {
    fleetMessage('exc-done', '');
    try {
      await apiSend('POST', '/v1/exceptions/' + encodeURIComponent(id) + '/revoke', reason ? { reason } : {});
      fleetMessage('exc-done', t('revoke_done')(id));
      const tr = document.querySelector('#exc-table tr[data-id="' + CSS.escape(id) + '"]');
      if (tr) tr.classList.remove('confirming');
      await refresh();
    } catch (e) {
      if (e.unauthorized) handleError(e);
      else showError(t('revoke_error') + (e.reason || e.message));
    }
  }

  // ---- retention (docs/evidence.md): the period and the oldest event kept, per kind ----

  function fmtPeriod(s) {
    if (!s) return t('ret_keep');
    if (s % (365 * 86400) === 0) return s / (365 * 86400) + t('ret_years');
    if (s % 86400 === 0) return s / 86400 + t('ret_days');
    return s + t('ret_seconds');
  }

  async function loadRetention() {
    const r = await (await api('/v1/retention')).json();
    const f = document.createDocumentFragment();
    Object.keys(r.kinds).forEach((k) => {
      const tr = el('tr', null, 'rk');
      tr.dataset.kind = k;
      const name = pick(KINDS, k);
      const td = el('td', name ? name + ' ' : '');
      td.appendChild(el('code', k));
      tr.appendChild(td);
      tr.appendChild(el('td', fmtPeriod(r.kinds[k].period_s), 'period'));
      tr.appendChild(el('td', r.kinds[k].oldest ? fmtTime(r.kinds[k].oldest) : t('none'), 'oldest'));
      f.appendChild(tr);
    });
    $('ret-table').tBodies[0].replaceChildren(f);
    $('ret-state').textContent = t('ret_last_run') + fmtTime(r.last_run) + t('ret_disposed') + r.last_disposed;
    $('ret-hold').textContent = t('ret_hold') + (r.hold.length ? r.hold.join(' ') : t('ret_none_held'));
    $('updated').textContent = t('updated') + fmtTime(new Date().toISOString());
  }

  async function loadLedger() {
    const rows = (await (await api('/v1/ledger')).json()).ledger;
    const f = document.createDocumentFragment();
    rows.forEach((r) => {
      const tr = el('tr', null, 'lg');
      tr.dataset.number = r.number;
      tr.appendChild(el('td', r.number, 'hash'));
      tr.appendChild(el('td', r.holder));
      tr.appendChild(el('td', r.department));
      tr.appendChild(el('td', r.model));
      tr.appendChild(el('td', dev(r) + ' ' + r.serial, 'hash'));
      tr.appendChild(el('td', r.encrypted ? t('yes') : t('no'), r.encrypted ? '' : 'warn'));
      tr.appendChild(el('td', r.lent || t('none')));
      tr.appendChild(el('td', r.returned || t('none')));
      tr.appendChild(el('td', r.last_terminal || t('none')));
      tr.appendChild(el('td', r.last_seen ? fmtTime(r.last_seen) : t('none')));
      tr.appendChild(el('td', r.note || ''));
      f.appendChild(tr);
    });
    $('ledger-table').tBodies[0].replaceChildren(f);
    $('ledger-none').hidden = rows.length !== 0;
    $('ledger-table').hidden = rows.length === 0;
  }

  // central TOTP (docs/fleet.md): read-only; the secrets never leave the collector's API
  async function loadTotp() {
    const rows = (await (await api('/v1/totp')).json()).totp;
    const f = document.createDocumentFragment();
    rows.forEach((r) => {
      const tr = el('tr', null, 'tp');
      tr.dataset.user = r.user;
      tr.appendChild(el('td', r.user));
      tr.appendChild(el('td', r.groups.join(' ')));
      tr.appendChild(el('td', fmtTime(r.enrolled_at)));
      tr.appendChild(el('td', r.enrolled_by || ''));
      const st = el('td');
      st.appendChild(el('span', t('totp_st_' + r.state), 'badge ' + (r.state === 'active' ? 'st-compliant' : 'st-unknown')));
      tr.appendChild(st);
      tr.appendChild(el('td', r.revoked_at ? fmtTime(r.revoked_at) + (r.revoke_reason ? ' (' + r.revoke_reason + ')' : '') : t('none')));
      const dbl = el('td', String(r.double_uses), 'num' + (r.double_uses ? ' warn' : ''));
      if (r.double_uses) dbl.title = t('totp_double_reason') + ' ' + fmtTime(r.last_double_use);
      tr.appendChild(dbl);
      f.appendChild(tr);
    });
    $('totp-table').tBodies[0].replaceChildren(f);
    $('totp-none').hidden = rows.length !== 0;
    $('totp-table').hidden = rows.length === 0;
  }

  async function submitImport(ev) {
    ev.preventDefault();
    fleetMessage('import-error', '');
    fleetMessage('import-done', '');
    const file = $('import-file').files[0];
    if (!file) return;
    try {
      const out = await apiSend('POST', '/v1/ledger.csv', await file.arrayBuffer(), 'text/csv');
      fleetMessage('import-done', t('imported')(out.imported));
      $('import-file').value = '';
      await refresh();
    } catch (e) {
      if (e.unauthorized) handleError(e);
      else fleetMessage('import-error', e.reason || e.message, t('import_error'));
    }
  }

  async function submitLedger(ev) {
    ev.preventDefault();
    fleetMessage('ledger-error', '');
    const v = (id) => $(id).value.trim();
    const body = { number: v('lg-number'), vendor: v('lg-vendor').toLowerCase(), product: v('lg-product').toLowerCase(),
      serial: v('lg-serial'), holder: v('lg-holder'), department: v('lg-department'), model: v('lg-model'),
      encrypted: $('lg-encrypted').checked, note: v('lg-note') };
    if (v('lg-lent')) body.lent = v('lg-lent');
    if (v('lg-returned')) body.returned = v('lg-returned');
    try {
      await apiSend('POST', '/v1/ledger', body);
      $('ledger-form').reset();
      await refresh();
    } catch (e) {
      if (e.unauthorized) handleError(e);
      else fleetMessage('ledger-error', e.reason || e.message, t('ledger_error'));
    }
  }

  async function exportLedger() {
    try {
      const blob = await (await api('/v1/ledger.csv')).blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'mynaguard-ledger.csv';
      a.dataset.source = '/v1/ledger.csv';
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) { handleError(e); }
  }

  async function loadGroups() {
    const { details } = await loadGroupsMap();
    const f = document.createDocumentFragment();
    details.forEach((g) => {
      const box = el('div', null, 'group');
      box.dataset.group = g.name;
      box.appendChild(el('h3', g.name));
      const dl = el('dl', null, 'facts');
      const add = (k, v, cls) => { dl.appendChild(el('dt', t(k))); dl.appendChild(el('dd', v, cls)); };
      if (g.base) {
        add('version', g.base.version);
        add('issued', fmtTime(g.base.issued));
        add('sha256', g.base.sha256, 'hash');
        add('max_days', g.base.grant_max_days);
        add('grant_classes', (g.base.grant_classes || []).map(usbClass).join(', ') || t('none'));
      } else add('base', t('no_base'), 'warn');
      box.appendChild(dl);
      const tbl = el('table', null, 'members');
      const head = el('tr');
      ['col_terminal', 'bundle_version', 'covered'].forEach((k) => head.appendChild(el('th', t(k))));
      tbl.appendChild(el('thead')).appendChild(head);
      const tb = el('tbody');
      g.members.forEach((m) => {
        const tr = el('tr');
        const td = el('td');
        const a = el('a', m.terminal, 'termlink');
        a.href = terminalHash(m.terminal);
        td.appendChild(a);
        tr.appendChild(td);
        tr.appendChild(el('td', m.bundle_version === null || m.bundle_version === undefined ? t('none') : m.bundle_version));
        tr.appendChild(el('td', m.covered ? t('yes') : t('not_covered'), m.covered ? '' : 'warn'));
        tb.appendChild(tr);
      });
      if (!g.members.length) emptyRow(tb, 3, t('none'));
      tbl.appendChild(tb);
      box.appendChild(tbl);
      f.appendChild(box);
    });
    $('group-list').replaceChildren(f);
    $('groups-none').hidden = details.length !== 0;
  }

  // ---- refresh and navigation ----

  function handleError(e) {
    if (e.unauthorized) showLogin(t('unauthorized'));
    else showError(t('failed') + e.message);
  }

  async function refresh() {
    if (!authed()) return;
    try {
      if (route.view === 'terminal') {
        await loadDetail(route.id);
      } else if (route.view === 'events') {
        await loadEvents();
      } else if (route.view === 'history') {
        await loadHistory();
      } else if (FLEET_VIEWS.includes(route.view)) {
        await loadFleet(route.view);
      } else if (route.view === 'retention') {
        await loadRetention();
      } else if (EXTRA()[route.view]) {
        await EXTRA()[route.view].load({ api, apiSend, el, fmtTime, lang, params: route.params, handleError, refresh });
      } else {
        await loadList();
      }
      if (route.view === 'terminal') {
        // the cards stay current on the detail view too
        const r = await api('/v1/terminals?limit=1');
        renderSummary((await r.json()).summary);
      }
      showError('');
    } catch (e) { handleError(e); }
  }

  async function onRoute() {
    const before = route.view;
    route = parseRoute();
    // a done message belongs to the view it was said on
    if (route.view !== before) ['decide-done', 'exc-done', 'import-done'].forEach((id) => { $(id).hidden = true; });
    show(route.view);
    await refresh();
    if (route.view !== before || route.view === 'terminal') window.scrollTo(0, 0);
  }

  function start() {
    $('login').hidden = true;
    $('main').hidden = false;
    onRoute();
    if (!timer) timer = setInterval(refresh, REFRESH_MS);
  }

  // The CSV of exactly what is on screen: the list's filter and order (every page of it), or the
  // events' filter, newest first. The collector streams it in chunks.
  async function exportCsv() {
    let path, name;
    if (route.view === 'ledger') return exportLedger();
    if (route.view === 'events') {
      const q = eventQuery();
      q.delete('after');
      q.delete('limit');
      path = '/v1/export.csv?' + q.toString();
      name = 'mynaguard-events.csv';
    } else if (route.view === 'terminal') {
      path = '/v1/export.csv?' + new URLSearchParams({ order: 'newest', terminal: route.id }).toString();
      name = 'mynaguard-' + route.id + '.csv';
    } else {
      path = '/v1/terminals.csv?' + listQuery().toString();
      name = 'mynaguard-terminals.csv';
    }
    try {
      const r = await api(path);
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name;
      a.dataset.source = path;
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) { handleError(e); }
  }

  async function loadChecks() {
    try {
      const r = await fetch('/checks.json', { cache: 'no-cache' });
      if (r.ok) CHECKS = await r.json();
    } catch (_) { /* the ids are shown instead */ }
  }

  async function init() {
    // #token=... in the address is read once and removed (a fragment never reaches the server);
    // the token then lives in this tab's sessionStorage only.
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search + '#/terminals');
    }
    token = sessionStorage.getItem(TOKEN_KEY);
    await loadChecks();
    applyLang();
    if (token === null) {
      // a session from before a reload: the cookie is sent by itself, the CSRF token comes back
      try {
        const r = await fetch('/v1/session', { cache: 'no-store', credentials: 'same-origin' });
        if (r.ok) session = await r.json();
      } catch (_) { /* not logged in */ }
      showWho();
    }

    $('account-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { name: $('account-name').value.trim(), password: $('account-password').value, code: $('account-code').value.trim() };
      $('account-password').value = '';
      $('account-code').value = '';
      let r = null;
      try {
        r = await fetch('/v1/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), cache: 'no-store', credentials: 'same-origin' });
      } catch (e) { showError(t('failed') + e.message); return; }
      if (!r.ok) {
        let why = '';
        try { why = (await r.json()).error || ''; } catch (_) { /* not JSON */ }
        showError(r.status !== 429 ? t('login_wrong') : /locked/.test(why) ? t('login_locked') : t('login_busy'));
        return;
      }
      session = await r.json();
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showWho();
      showError('');
      start();
    });

    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token-input').value.trim();
      if (!v) return;
      token = v;
      sessionStorage.setItem(TOKEN_KEY, v);
      $('token-input').value = '';
      start();
    });
    $('lang').addEventListener('click', () => {
      lang = lang === 'ja' ? 'en' : 'ja';
      localStorage.setItem(LANG_KEY, lang);
      applyLang();
      refresh();
    });
    $('refresh').addEventListener('click', refresh);
    $('export').addEventListener('click', exportCsv);
    $('logout').addEventListener('click', async () => {
      if (session) {
        try { await fetch('/v1/session', { method: 'DELETE', headers: authHeaders(true), cache: 'no-store', credentials: 'same-origin' }); } catch (_) { /* the cookie expires anyway */ }
      }
      showLogin('');
    });
    // to the list as it was left (filter, sort, page)
    $('back').addEventListener('click', () => go(lastListHash));
    $('filter').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => go(listHash({ q: $('filter').value.trim(), page: null }), true), 300);
    });
    $('check-filter').addEventListener('change', () => go(listHash({ check: $('check-filter').value, page: null })));
    document.querySelectorAll('#terminals th button.sort').forEach((b) => b.addEventListener('click', () => {
      const p = route.params;
      const same = (p.get('sort') || 'problem') === b.dataset.sort;
      const dir = same && (p.get('dir') || 'asc') === 'asc' ? 'desc' : 'asc';
      go(listHash({ sort: b.dataset.sort, dir: dir === 'asc' ? null : dir, page: null }));
    }));
    $('ev-kind').addEventListener('change', () => go(eventsHash({ kind: $('ev-kind').value, after: null })));
    $('ev-terminal').addEventListener('change', () => go(eventsHash({ terminal: $('ev-terminal').value.trim(), after: null })));
    $('ev-group').addEventListener('change', () => go(eventsHash({ group: $('ev-group').value.trim(), after: null })));
    $('ev-since').addEventListener('change', () => go(eventsHash({ since: $('ev-since').value, after: null })));
    $('ev-until').addEventListener('change', () => go(eventsHash({ until: $('ev-until').value, after: null })));
    $('grant-form').addEventListener('submit', submitGrant);
    $('refuse-form').addEventListener('submit', submitRefuse);
    $('decide-cancel').addEventListener('click', closeDecide);
    $('grant-from').addEventListener('change', updateLimit);
    $('import-form').addEventListener('submit', submitImport);
    $('ledger-form').addEventListener('submit', submitLedger);
    $('ledger-export').addEventListener('click', exportLedger);
    window.addEventListener('hashchange', () => { if (authed()) onRoute(); });

    if (authed()) start();
    else showLogin('');
  }

  document.addEventListener('DOMContentLoaded', init);
})();
