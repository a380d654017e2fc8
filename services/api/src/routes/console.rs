//! The operator console's entry: `/console/` serves a sign-in page (operator token) and,
//! once signed in, the campaigns with their counts, read from the API in the browser.
//! The full console (policies, approvals, reports) is the campaign-operations issue.

use axum::response::Html;

const PAGE: &str = r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>政策精准推送 · 控制台</title>
<style>body{font-family:"PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
#signin,#main{max-width:960px}</style></head><body>
<h1>政策精准推送 · 控制台</h1>
<div id="signin"><p>请使用操作员令牌登录。</p>
<form id="f"><input id="token" type="password" placeholder="操作员令牌" size="40" autocomplete="off"> <button>登录</button></form><p id="err" style="color:#c00"></p></div>
<div id="main" hidden><p><button id="out">退出</button></p><h2>推送活动</h2><table id="t"><thead><tr>
<th>活动</th><th>状态</th><th>符合条件</th><th>不可达</th><th>排队</th><th>已发送</th><th>已送达</th><th>失败</th><th>点击</th></tr></thead><tbody></tbody></table></div>
<script>
const key='policy-push-token';
async function load(){const tok=sessionStorage.getItem(key);if(!tok)return;
 const r=await fetch('/api/v1/campaigns',{headers:{Authorization:'Bearer '+tok}});
 if(r.status!==200){sessionStorage.removeItem(key);document.getElementById('err').textContent='令牌无效';return;}
 const v=await r.json();document.getElementById('signin').hidden=true;document.getElementById('main').hidden=false;
 const tb=document.querySelector('#t tbody');tb.innerHTML='';
 for(const c of v.items){const n=c.counts;const tr=document.createElement('tr');
  for(const x of [c.name,c.status,n.eligible,n.unreachable,n.queued,n.sent,n.delivered,n.failed,n.clicked]){const td=document.createElement('td');td.textContent=x;tr.appendChild(td);}
  tb.appendChild(tr);}}
document.getElementById('f').onsubmit=e=>{e.preventDefault();sessionStorage.setItem(key,document.getElementById('token').value);load();};
document.getElementById('out').onclick=()=>{sessionStorage.removeItem(key);location.reload();};
load();setInterval(load,3000);
</script></body></html>"#;

pub async fn index() -> Html<&'static str> {
    Html(PAGE)
}
