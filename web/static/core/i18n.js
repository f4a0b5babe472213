// THE translation table of the page (Korean and English). t("key", {vars}) → text.
// A missing key shows the key itself (easy to spot on a screenshot) — never an empty label.

const TABLE = {
  ko: {
    app: "콜코어", sign_in: "로그인", sign_out: "로그아웃", agent_id: "상담원 ID 또는 사용자 이름", pin: "PIN 또는 비밀번호", sign_in_failed: "로그인 실패: {detail}",
    no_screen: "이 계정으로 열 수 있는 화면이 없습니다", language: "언어", online: "연결됨", offline: "연결 끊김 — 다시 연결하는 중…", nav_agent: "상담 화면", nav_wallboard: "월보드", nav_admin: "관리",
    loading: "불러오는 중…", status: "상태", queues: "대기열", member: "참여 중", not_member: "참여 안 함", time_in_state: "상태 유지 시간",
    st_logged_out: "로그아웃", st_ready: "대기", st_paused: "휴식", st_ringing: "벨 울림", st_on_call: "통화 중", st_wrapup: "후처리",
    login_queues: "업무 시작 (대기열 로그인)", logged_in: "대기열에 로그인했습니다", logged_out: "로그아웃했습니다", ready: "대기 상태로",
    ready_now: "지금 대기", wrapup_left: "후처리 {s}초 남음", pause: "휴식", pause_reason: "휴식 사유", logout: "로그아웃",
    current_call: "현재 통화", no_call: "통화가 없습니다. 전화가 오면 여기에 고객 정보가 표시됩니다.", ringing: "전화가 왔습니다",
    on_hold: "보류 중", repeat_caller: "재문의 고객", recording: "녹음 중", unknown_caller: "알 수 없는 고객", queue: "대기열",
    waited: "대기 시간", tier: "등급", company: "회사", plan: "요금제", ivr_journey: "ARS 이용 경로", no_journey: "ARS 경로 정보 없음",
    notes: "메모", last_interactions: "최근 상담 이력", date: "일시", outcome: "결과", disposition: "상담 결과", agent: "상담원",
    no_history: "이전 상담 이력이 없습니다", out_answered: "응대", out_abandoned: "포기", out_ivr_hangup: "ARS 종료", out_unanswered: "미응답", out_lost: "유실",
    origin_click_to_call: "발신 통화", origin_callback: "콜백",
    hangup: "통화 종료", hold: "보류", unhold: "보류 해제", dtmf: "DTMF 전송", dtmf_sent: "DTMF를 보냈습니다",
    rec_pause: "녹음 일시정지", rec_resume: "녹음 재개", rec_paused: "녹음 일시정지 중", rec_not_recorded: "녹음하지 않는 통화입니다",
    transfer_to: "호 전환 대상 종류", to_agent: "상담원", to_queue: "대기열", to_number: "전화번호", transfer_target: "전환 대상",
    blind_transfer: "바로 전환", attended_transfer: "협의 후 전환", need_target: "전환 대상을 입력하세요",
    transferred: "호를 전환했습니다", atxfer_started: "협의 통화를 시작했습니다 — 끊으면 전환됩니다", you_transferred: "{who}에게 통화를 넘겼습니다.",
    after_call: "통화 후 처리", choose: "선택하세요", follow_up: "후속 콜백 예약", follow_up_at: "콜백 일시", number: "전화번호",
    save: "저장", skip: "건너뛰기", saved: "저장했습니다", need_disposition: "상담 결과나 메모를 입력하세요", follow_up_booked: "후속 콜백을 예약했습니다",
    callbacks: "콜백 목록", no_callbacks: "처리할 콜백이 없습니다", asap: "가능한 빨리", take: "맡기", call_back: "전화 걸기", dialing: "전화를 거는 중…",
    cb_open: "대기", cb_taken: "담당", cb_dialing: "발신 중", cb_done: "완료", cb_cancelled: "취소",
    customers: "고객 검색", search_customers: "이름, 전화번호, 이메일", search: "검색", edit: "수정", call: "전화", cancel: "취소",
    name: "이름", phone: "전화번호", email: "이메일", call_failed: "{number} 발신 실패: {reason}",
    wallboard: "실시간 현황판", tv_mode: "TV 모드", waiting_for_data: "데이터 기다리는 중…", data_age: "{s}초 전 데이터 ({at})",
    agents: "상담원", waiting_callers: "대기 중인 고객", abandoned_today: "오늘 포기 호", nobody_waiting: "대기 중인 고객이 없습니다",
    no_abandoned: "오늘 포기한 호가 없습니다", warn: "경고", alert: "위험",
    m_waiting: "대기 고객", m_longest_wait: "최장 대기", m_service_level: "서비스 레벨 (오늘)", m_service_level_30m: "서비스 레벨 (30분)",
    m_answered_today: "오늘 응대", m_abandoned_today: "오늘 포기",
    caller: "고객", handled: "오늘 처리", missed: "오늘 놓침", actions: "작업", listen: "감청", whisper: "코칭", barge: "3자 통화",
    spy_listen: "감청을 시작합니다", spy_whisper: "코칭을 시작합니다", spy_barge: "3자 통화를 시작합니다",
    force_pause: "강제 휴식", force_logout: "강제 로그아웃", paused_agent: "상담원을 휴식 상태로 바꿨습니다", logged_out_agent: "상담원을 로그아웃했습니다",
    callback_created: "콜백 작업을 만들었습니다",
    pause_reasons: "휴식 사유", queue_settings: "대기열 설정", dialplans: "ARS 시나리오", role: "역할", skills: "스킬(대기열)",
    role_agent: "상담원", role_supervisor: "관리자(슈퍼바이저)", role_admin: "시스템 관리자", new_agent: "상담원 추가", interface: "장치 (인터페이스)",
    extension: "내선", skills_hint: "대기열 (쉼표로, 대기열:우선순위)", create: "추가", save_skills: "스킬 저장", new_pin: "새 PIN",
    reset_pin: "PIN 재설정", pin_reset: "PIN을 재설정했습니다", pin_too_short: "PIN은 4자리 이상입니다", deactivate: "사용 중지", code: "코드", label: "표시 이름", add: "추가",
    qs_wrapup_seconds: "후처리 시간(초)", qs_service_level_seconds: "서비스 레벨 기준(초)", qs_overflow_queue: "넘침 대기열",
    qs_overflow_after_seconds: "넘침 기준 대기(초)", qs_overflow_when_no_agent: "상담원이 없으면 넘김", qs_callback_after_seconds: "콜백 제안 대기(초)",
    qs_vip_priority: "VIP 우선순위", qs_repeat_priority: "재문의 우선순위", qs_default_handle_seconds: "기본 처리 시간(초)",
    flow: "시나리오", reload_from_disk: "파일에서 다시 읽기", last_reload: "마지막 적용", check_ok: "검사 통과", check_failed: "검사 실패",
    version: "버전", loaded_at: "적재 시각", file: "파일", active: "사용 중", check: "검사", activate: "이 버전 적용 (롤백)",
    diff: "버전 비교", diff_from: "이전 버전", diff_to: "비교할 버전", show_diff: "비교", no_difference: "차이가 없습니다",
    flow_graph: "시나리오 흐름도", source: "원본 YAML",
    nav_reports: "보고서", reports: "통계 보고서", rep_from: "시작일", rep_to: "종료일", rep_interval: "집계 단위", rep_show: "조회",
    rep_all_queues: "전체 대기열", rep_summary: "기간 요약", rep_no_data: "이 기간의 데이터가 없습니다", rep_bad_period: "종료일이 시작일보다 빠릅니다",
    rep_period: "{from} ~ {to}", rep_failed: "보고서를 불러오지 못했습니다: {detail}", rep_csv_queues: "대기열 CSV", rep_csv_quality: "녹취·QA CSV", rep_csv_agents: "상담원 CSV",
    rep_compare: "대기열 비교", rep_needed: "필요 인원(Erlang C)", rep_logged_in: "로그인 인원", rep_staffing: "적정 인원 대비 로그인 인원",
    int_15min: "15분", int_hour: "시간", int_day: "일", int_week: "주", int_month: "월",
    kb_title: "지식 검색", kb_suggested: "이 통화에 추천하는 문서", kb_no_call: "통화가 오면 추천 문서가 여기에 표시됩니다", kb_no_suggestions: "추천 문서가 없습니다",
    kb_search: "지식 검색", kb_search_placeholder: "예: 환불해주세요", kb_any_language: "모든 언어", kb_found: "{n}건", kb_corrected: "오타 교정",
    kb_helpful: "도움이 됐어요", kb_helpful_done: "도움됨 표시함", kb_marked_helpful: "도움이 된 문서로 표시했습니다", kb_helpful_count: "도움됨 {n}회", kb_close: "닫기", kb_notices: "확인할 공지", kb_acknowledge: "확인했습니다", kb_acknowledged: "공지를 확인했습니다",
    k_offered: "인입", k_answered: "응답", k_service_level_pct: "서비스 레벨", k_asa_seconds: "평균 응답 속도(ASA)", k_aht_seconds: "평균 처리 시간(AHT)",
    k_abandon_rate_pct: "포기율", k_fcr_repeat_pct: "첫 통화 해결률(FCR)", k_csat_pct: "고객 만족도(CSAT)", k_recorded_pct: "녹취율",
    k_qa_coverage_pct: "QA 평가율", k_qa_avg_score: "평균 QA 점수",
    // --- wallboard KPI tiles from the report store (web: issues 14/16) ---
    kpi_title: "오늘 KPI (보고서 기준)", kpi_waiting: "KPI 계산 중…", kpi_age: "KPI {s}초 전 ({at})",
    kpi_asa_seconds: "평균 응답 속도(ASA)", kpi_aht_seconds: "평균 처리 시간(AHT)", kpi_abandon_rate_pct: "포기율",
    kpi_service_level_pct: "서비스 레벨 (보고서)", kpi_staffing: "필요 인원(Erlang C) / 로그인", sec: "초",
    slf_answered: "기준 시간 내 응답 ÷ 응답", slf_offered: "기준 시간 내 응답 ÷ (응답 + 포기)",
    slf_abandoned_in_t_positive: "(기준 시간 내 응답 + 기준 시간 내 포기) ÷ (응답 + 포기)",
    slf_abandoned_after_t: "기준 시간 내 응답 ÷ (응답 + 기준 시간 후 포기)",
    // --- end wallboard KPI tiles ---
  },
  en: {
    app: "callcore", sign_in: "Sign in", sign_out: "Sign out", agent_id: "Agent ID or user name", pin: "PIN or password", sign_in_failed: "Sign-in failed: {detail}",
    no_screen: "This account has no screen to open", language: "Language", online: "Online", offline: "Offline — reconnecting…", nav_agent: "Desk", nav_wallboard: "Wallboard", nav_admin: "Admin",
    loading: "Loading…", status: "Status", queues: "Queues", member: "member", not_member: "not a member", time_in_state: "Time in state",
    st_logged_out: "Logged out", st_ready: "Ready", st_paused: "Paused", st_ringing: "Ringing", st_on_call: "On a call", st_wrapup: "Wrap-up",
    login_queues: "Start work (log in to queues)", logged_in: "Logged in to your queues", logged_out: "Logged out", ready: "Ready",
    ready_now: "Ready now", wrapup_left: "Wrap-up: {s} s left", pause: "Pause", pause_reason: "Pause reason", logout: "Log out",
    current_call: "Current call", no_call: "No call. When the phone rings, the caller shows here.", ringing: "Incoming call",
    on_hold: "On hold", repeat_caller: "Repeat caller", recording: "Recording", unknown_caller: "Unknown caller", queue: "Queue",
    waited: "Waited", tier: "Tier", company: "Company", plan: "Plan", ivr_journey: "IVR journey", no_journey: "No IVR journey",
    notes: "Notes", last_interactions: "Last interactions", date: "Date", outcome: "Outcome", disposition: "Disposition", agent: "Agent",
    no_history: "No earlier calls", out_answered: "Answered", out_abandoned: "Abandoned", out_ivr_hangup: "Left in IVR", out_unanswered: "Unanswered", out_lost: "Lost",
    origin_click_to_call: "Outbound call", origin_callback: "Callback",
    hangup: "Hang up", hold: "Hold", unhold: "Resume", dtmf: "Send DTMF", dtmf_sent: "DTMF sent",
    rec_pause: "Pause recording", rec_resume: "Resume recording", rec_paused: "Recording paused", rec_not_recorded: "This call is not recorded",
    transfer_to: "Transfer target type", to_agent: "Agent", to_queue: "Queue", to_number: "Number", transfer_target: "Transfer to",
    blind_transfer: "Blind transfer", attended_transfer: "Attended transfer", need_target: "Enter a transfer target",
    transferred: "Call transferred", atxfer_started: "Consultation started — hang up to complete the transfer", you_transferred: "You handed the call to {who}.",
    after_call: "After-call work", choose: "Choose…", follow_up: "Follow-up callback", follow_up_at: "Call back at", number: "Number",
    save: "Save", skip: "Skip", saved: "Saved", need_disposition: "Choose a disposition or write a note", follow_up_booked: "Follow-up callback booked",
    callbacks: "Callbacks", no_callbacks: "No callbacks to handle", asap: "as soon as possible", take: "Take", call_back: "Call back", dialing: "Dialling…",
    cb_open: "open", cb_taken: "taken", cb_dialing: "dialling", cb_done: "done", cb_cancelled: "cancelled",
    customers: "Customers", search_customers: "Name, phone, email", search: "Search", edit: "Edit", call: "Call", cancel: "Cancel",
    name: "Name", phone: "Phone", email: "Email", call_failed: "Calling {number} failed: {reason}",
    wallboard: "Wallboard", tv_mode: "TV mode", waiting_for_data: "Waiting for data…", data_age: "Data {s} s old ({at})",
    agents: "Agents", waiting_callers: "Waiting callers", abandoned_today: "Abandoned today", nobody_waiting: "Nobody is waiting",
    no_abandoned: "No abandoned calls today", warn: "warn", alert: "alert",
    m_waiting: "Waiting", m_longest_wait: "Longest wait", m_service_level: "Service level (today)", m_service_level_30m: "Service level (30 min)",
    m_answered_today: "Answered today", m_abandoned_today: "Abandoned today",
    caller: "Caller", handled: "Handled", missed: "Missed", actions: "Actions", listen: "Listen", whisper: "Whisper", barge: "Barge",
    spy_listen: "Listening", spy_whisper: "Whispering", spy_barge: "Barging in",
    force_pause: "Force pause", force_logout: "Force logout", paused_agent: "Agent paused", logged_out_agent: "Agent logged out",
    callback_created: "Callback task created",
    pause_reasons: "Pause reasons", queue_settings: "Queue settings", dialplans: "Dialplans", role: "Role", skills: "Skills (queues)",
    role_agent: "Agent", role_supervisor: "Supervisor", role_admin: "Admin", new_agent: "New agent", interface: "Device (interface)",
    extension: "Extension", skills_hint: "Queues (comma separated, queue:penalty)", create: "Create", save_skills: "Save skills", new_pin: "New PIN",
    reset_pin: "Reset PIN", pin_reset: "PIN reset", pin_too_short: "A PIN has at least 4 digits", deactivate: "Deactivate", code: "Code", label: "Label", add: "Add",
    qs_wrapup_seconds: "Wrap-up (s)", qs_service_level_seconds: "Service level target (s)", qs_overflow_queue: "Overflow queue",
    qs_overflow_after_seconds: "Overflow after (s)", qs_overflow_when_no_agent: "Overflow when no agent", qs_callback_after_seconds: "Offer callback after (s)",
    qs_vip_priority: "VIP priority", qs_repeat_priority: "Repeat-caller priority", qs_default_handle_seconds: "Default handle time (s)",
    flow: "Flow", reload_from_disk: "Reload from disk", last_reload: "Last change", check_ok: "Checker passed", check_failed: "Checker failed",
    version: "Version", loaded_at: "Loaded", file: "File", active: "active", check: "Check", activate: "Activate (roll back)",
    diff: "Compare versions", diff_from: "From version", diff_to: "To version", show_diff: "Compare", no_difference: "No difference",
    flow_graph: "Flow graph", source: "YAML source",
    nav_reports: "Reports", reports: "Reports", rep_from: "From", rep_to: "To", rep_interval: "Interval", rep_show: "Show",
    rep_all_queues: "All queues", rep_summary: "Period summary", rep_no_data: "No data for this period", rep_bad_period: "The end date is before the start date",
    rep_period: "{from} – {to}", rep_failed: "Could not load the reports: {detail}", rep_csv_queues: "Queues CSV", rep_csv_quality: "Recording & QA CSV", rep_csv_agents: "Agents CSV",
    rep_compare: "Queue comparison", rep_needed: "needed (Erlang C)", rep_logged_in: "logged in", rep_staffing: "Agents needed vs logged in",
    int_15min: "15 minutes", int_hour: "Hour", int_day: "Day", int_week: "Week", int_month: "Month",
    kb_title: "Knowledge base", kb_suggested: "Suggested for this call", kb_no_call: "Suggested articles show here when a call comes in", kb_no_suggestions: "No suggestions",
    kb_search: "Search the knowledge base", kb_search_placeholder: "e.g. refund", kb_any_language: "Any language", kb_found: "{n} found", kb_corrected: "typo fixed",
    kb_helpful: "Helpful", kb_helpful_done: "Marked helpful", kb_marked_helpful: "Marked as helpful", kb_helpful_count: "helpful {n}×", kb_close: "Close", kb_notices: "Notices to acknowledge", kb_acknowledge: "Acknowledge", kb_acknowledged: "Notice acknowledged",
    k_offered: "Offered", k_answered: "Answered", k_service_level_pct: "Service level", k_asa_seconds: "Avg speed of answer (ASA)", k_aht_seconds: "Avg handle time (AHT)",
    k_abandon_rate_pct: "Abandon rate", k_fcr_repeat_pct: "First-contact resolution (FCR)", k_csat_pct: "Customer satisfaction (CSAT)", k_recorded_pct: "Recorded",
    k_qa_coverage_pct: "QA coverage", k_qa_avg_score: "Avg QA score",
    // --- wallboard KPI tiles from the report store (web: issues 14/16) ---
    kpi_title: "Today's KPIs (from the reports)", kpi_waiting: "Computing KPIs…", kpi_age: "KPIs {s} s old ({at})",
    kpi_asa_seconds: "Avg speed of answer (ASA)", kpi_aht_seconds: "Avg handle time (AHT)", kpi_abandon_rate_pct: "Abandon rate",
    kpi_service_level_pct: "Service level (reports)", kpi_staffing: "Needed (Erlang C) / logged in", sec: "s",
    slf_answered: "answered within T ÷ answered", slf_offered: "answered within T ÷ (answered + abandoned)",
    slf_abandoned_in_t_positive: "(answered within T + abandoned within T) ÷ (answered + abandoned)",
    slf_abandoned_after_t: "answered within T ÷ (answered + abandoned after T)",
    // --- end wallboard KPI tiles ---
  },
};

const KEY = "callcore.lang";
let current = localStorage.getItem(KEY) || ((navigator.language || "ko").startsWith("en") ? "en" : "ko");
if (!TABLE[current]) current = "ko";

export const LANGUAGES = Object.keys(TABLE);

export function lang() {
  return current;
}

export function setLang(l) {
  if (!TABLE[l]) return;
  current = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l;
}

export function t(key, vars) {
  const text = TABLE[current][key] ?? TABLE.en[key] ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? "")) : text;
}

document.documentElement.lang = current;
