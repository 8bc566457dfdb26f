package o365sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// rng is a splitmix64 stream: tiny, allocation-free and reproducible from
// (blob key, record index), which is what lets a record be regenerated
// anywhere (HTTP body, ExpectedRecords, duplicate copies).
type rng struct{ s uint64 }

func (r *rng) next() uint64   { r.s += 0x9e3779b97f4a7c15; return splitmix(r.s) }
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }
func (r *rng) pct(p int) bool { return r.intn(100) < p }
func pick[T any](r *rng, xs []T) T {
	return xs[r.intn(len(xs))]
}

// wlSpec is one kind of record a content type carries.
type wlSpec struct {
	workload   string
	recordType int
	weight     int
	ops        []string
}

// Workloads and RecordTypes per content type (mgmt-api §8.3, §8.4). DLP
// records carry the source workload, never "DLP".
var contentSpecs = [][]wlSpec{
	{ // Audit.AzureActiveDirectory
		{"AzureActiveDirectory", 15, 50, []string{"UserLoggedIn", "UserLoginFailed"}},
		{"AzureActiveDirectory", 8, 35, []string{"Add user.", "Update user.", "Add member to group.", "Reset user password.", "Update application.", "Consent to application."}},
		{"AzureActiveDirectory", 9, 15, []string{"UserLoggedIn", "UserLoginFailed"}},
	},
	{ // Audit.Exchange
		{"Exchange", 2, 35, []string{"Send", "Update", "MoveToDeletedItems", "Create", "SendAs"}},
		{"Exchange", 50, 30, []string{"MailItemsAccessed"}},
		{"Exchange", 3, 15, []string{"SoftDelete", "HardDelete", "Move"}},
		{"Exchange", 1, 20, []string{"Set-Mailbox", "New-InboxRule", "Add-MailboxPermission", "Set-TransportRule"}},
	},
	{ // Audit.SharePoint
		{"SharePoint", 6, 35, []string{"FileAccessed", "FileModified", "FileDownloaded", "FileUploaded", "FileDeleted"}},
		{"OneDrive", 6, 25, []string{"FileAccessed", "FileModified", "FileSyncDownloadedFull", "FileUploaded"}},
		{"SharePoint", 4, 15, []string{"PageViewed", "SiteCollectionAdminAdded", "SearchQueryPerformed"}},
		{"OneDrive", 7, 10, []string{"FileAccessed", "FolderCreated"}},
		{"SharePoint", 14, 15, []string{"SharingSet", "AnonymousLinkCreated", "SharingInvitationCreated"}},
	},
	{ // Audit.General
		{"MicrosoftTeams", 25, 20, []string{"TeamCreated", "MemberAdded", "ChannelAdded", "MessagesListed"}},
		{"PowerBI", 20, 10, []string{"ViewReport", "ExportReport", "ViewDashboard"}},
		{"Yammer", 22, 6, []string{"MessageCreated", "FileVisited", "GroupCreation"}},
		{"MicrosoftForms", 66, 6, []string{"CreateForm", "ViewResponses", "EditForm"}},
		{"MicrosoftStream", 32, 5, []string{"StreamInvokeVideoView", "StreamCreateVideo"}},
		{"MicrosoftFlow", 30, 6, []string{"CreateFlow", "EditFlow"}},
		{"SecurityComplianceCenter", 18, 8, []string{"New-ComplianceSearch", "Start-ComplianceSearch", "Set-ProtectionAlert"}},
		{"ThreatIntelligence", 28, 10, []string{"TIMailData"}},
		{"CRM", 21, 8, []string{"Retrieve", "Update", "Create"}},
		{"Copilot", 261, 15, []string{"CopilotInteraction"}},
		{"Dynamics 365", 278, 6, []string{"AuthenticateUser", "ExtensionInstalled"}},
	},
	{ // DLP.All
		{"Exchange", 13, 50, []string{"DlpRuleMatch"}},
		{"SharePoint", 11, 30, []string{"DlpRuleMatch"}},
		{"OneDrive", 11, 20, []string{"DlpRuleMatch"}},
	},
}

// recordMeta is what ExpectedRecords reports; it is drawn first from the
// record's rng so that it is the same whether or not the body is written.
type recordMeta struct {
	id         string
	recordType int
	workload   string
	operation  string
	creation   time.Time
	dup        bool
}

// resolve follows duplicate copies to the blob and own-record index that
// generate record j of b.
func resolve(b *blob, j int) (src *blob, own int, dup bool) {
	for j < b.dupN {
		b, dup = b.dupSrc, true
	}
	return b, j - b.dupN, dup
}

func (s *Server) recordMetaOf(b *blob, j int) recordMeta {
	src, own, dup := resolve(b, j)
	r := rng{s: mix(src.key, uint64(own))}
	m := drawMeta(&r, src)
	m.dup = dup
	return m
}

func drawMeta(r *rng, b *blob) recordMeta {
	specs := contentSpecs[b.ctIdx]
	total := 0
	for _, sp := range specs {
		total += sp.weight
	}
	x := r.intn(total)
	sp := specs[0]
	for _, c := range specs {
		if x < c.weight {
			sp = c
			break
		}
		x -= c.weight
	}
	return recordMeta{
		id:         guidFrom(r.next(), r.next()),
		recordType: sp.recordType,
		workload:   sp.workload,
		operation:  pick(r, sp.ops),
		// Events happen a little before their blob is created, in no
		// particular order inside it (mgmt-api §3.6).
		creation: b.created.Add(-time.Duration(30+r.intn(3570)) * time.Second).Truncate(time.Second),
	}
}

// writeRecord appends record j of b to w. dlpDetails is false when the
// token lacks ActivityFeed.ReadDlp: DLP records then omit detected values.
func (s *Server) writeRecord(w *jw, b *blob, j int, dlpDetails bool) {
	src, own, _ := resolve(b, j)
	r := rng{s: mix(src.key, uint64(own))}
	m := drawMeta(&r, src)
	u := &s.users[r.intn(len(s.users))]
	w.obj()
	w.kstr("CreationTime", m.creation.Format("2006-01-02T15:04:05"))
	w.kstr("Id", m.id)
	w.kstr("Operation", m.operation)
	w.kstr("OrganizationId", s.cfg.TenantID)
	w.kint("RecordType", int64(m.recordType))
	if src.ctIdx == 4 {
		s.writeDLP(w, &r, m, u, dlpDetails)
		w.endObj()
		return
	}
	writeResultStatus(w, &r, m)
	w.kstr("UserKey", u.key)
	w.kint("UserType", int64(pick(&r, []int{0, 0, 0, 0, 0, 0, 2, 4, 5, 10})))
	w.kint("Version", 1)
	w.kstr("Workload", m.workload)
	ip := writeClientIP(w, &r, m.workload == "Copilot")
	w.kstr("UserId", u.upn)
	switch src.ctIdx {
	case 0:
		s.writeAAD(w, &r, m, u, ip)
	case 1:
		s.writeExchange(w, &r, m, u, ip)
	case 2:
		s.writeSharePoint(w, &r, m, u)
	case 3:
		s.writeGeneral(w, &r, m, u)
	}
	// About 1 record in 80 is 10 KB or more, like Entra policy updates with
	// whole documents in ModifiedProperties.
	if r.intn(80) == 0 {
		w.key("ModifiedProperties").arr().obj().
			kstr("Name", "Description").kstr("NewValue", prose(&r, 10240+r.intn(4096))).kstr("OldValue", "").
			endObj().endArr()
	}
	w.endObj()
}

func writeResultStatus(w *jw, r *rng, m recordMeta) {
	var v string
	switch {
	case m.recordType == 1:
		v = pick(r, []string{"True", "True", "True", "False"}) // Exchange admin (mgmt-api §8.1)
	case m.operation == "UserLoginFailed":
		v = pick(r, []string{"Failed", "failed", "Failure"})
	case m.workload == "SharePoint" || m.workload == "OneDrive":
		if !r.pct(20) {
			return // mostly absent for file operations
		}
		v = "Succeeded"
	default:
		v = pick(r, []string{"Succeeded", "Succeeded", "Success", "success", "PartiallySucceeded", "Succeeded"})
	}
	w.kstr("ResultStatus", v)
}

// writeClientIP writes ClientIP in one of the shapes of mgmt-api §8.5, or
// null, or nothing. It returns the bare address for fields such as
// ClientIPAddress and ActorIpAddress.
func writeClientIP(w *jw, r *rng, copilot bool) string {
	v4 := fmt.Sprintf("%d.%d.%d.%d", pick(r, []int{192, 198, 203}), pick(r, []int{0, 51, 0}), pick(r, []int{2, 100, 113}), 1+r.intn(254))
	v6 := fmt.Sprintf("2001:db8::%x", 1+r.intn(0xfffe))
	port := strconv.Itoa(1024 + r.intn(64000))
	var raw, bare string
	switch x := r.intn(100); {
	case x < 40:
		raw, bare = v4, v4
	case x < 50:
		raw, bare = v6, v6
	case x < 55:
		raw, bare = v4+":"+port, v4
	case x < 59:
		raw, bare = "["+v4+"]:"+port, v4
	case x < 62:
		raw, bare = "["+v4+"]", v4
	case x < 67:
		raw, bare = "["+v6+"]:"+port, v6
	case x < 70:
		raw, bare = "["+v6+"]", v6
	case x < 76:
		raw, bare = "::ffff:"+v4, v4
	case x < 80:
		raw, bare = "[::ffff:"+v4+"]:"+port, v4
	case x < 82:
		raw = "localhost:" + port
	case x < 91:
		w.key("ClientIP").null()
		return ""
	case copilot && x < 95:
		// Microsoft's own Copilot sample has this malformed shape.
		raw = "ffff:10.11.0." + strconv.Itoa(1+r.intn(254))
	default:
		return "" // absent
	}
	w.kstr("ClientIP", raw)
	return bare
}

func (s *Server) writeAAD(w *jw, r *rng, m recordMeta, u *user, ip string) {
	evType := int64(0)
	if m.recordType == 8 {
		evType = 1
	}
	w.kint("AzureActiveDirectoryEventType", evType)
	failed := m.operation == "UserLoginFailed"
	w.nameValues("ExtendedProperties",
		"ResultStatusDetail", map[bool]string{true: "UserError", false: "Redirect"}[failed],
		"UserAgent", pick(r, userAgents),
		"RequestType", pick(r, []string{"Login:login", "OAuth2:Authorize", "OAuth2:Token", "Kmsi:kmsi"}),
		"KeepMeSignedIn", pick(r, []string{"true", "false"}))
	if m.recordType == 8 {
		w.key("ModifiedProperties").arr().obj().
			kstr("Name", "AccountEnabled").kstr("NewValue", "[\r\n  true\r\n]").kstr("OldValue", "[]").endObj().
			obj().kstr("Name", "Included Updated Properties").kstr("NewValue", "AccountEnabled").kstr("OldValue", "").endObj().endArr()
	} else {
		w.key("ModifiedProperties").arr().endArr()
	}
	w.key("Actor").arr().obj().kstr("ID", u.upn).kint("Type", 5).endObj().obj().kstr("ID", u.oid).kint("Type", 3).endObj().endArr()
	w.kstr("ActorContextId", s.cfg.TenantID)
	if ip != "" {
		w.kstr("ActorIpAddress", ip)
	}
	w.kstr("InterSystemsId", guidFrom(r.next(), r.next()))
	w.kstr("IntraSystemId", guidFrom(r.next(), r.next()))
	w.kstr("SupportTicketId", "")
	target := guidFrom(r.next(), 7)
	w.key("Target").arr().obj().kstr("ID", target).kint("Type", 0).endObj().endArr()
	w.kstr("TargetContextId", s.cfg.TenantID)
	w.kstr("ObjectId", target)
	if m.recordType != 8 {
		w.kstr("ApplicationId", pick(r, []string{"00000002-0000-0ff1-ce00-000000000000", "4765445b-32c6-49b0-83e6-1d93765276ca", "d3590ed6-52b3-4102-aeff-aad2292ab01c"}))
		w.nameValues("DeviceProperties", "OS", pick(r, []string{"Windows10", "MacOs", "Ios", "Android"}), "BrowserType", pick(r, []string{"Edge", "Chrome", "Safari"}), "IsCompliantAndManaged", "False")
		if failed {
			w.kstr("ErrorNumber", "50126")
			w.kstr("LogonError", "InvalidUserNameOrPassword")
		} else {
			w.kstr("ErrorNumber", "0")
		}
	}
}

func (s *Server) writeExchange(w *jw, r *rng, m recordMeta, u *user, ip string) {
	w.kstr("OrganizationName", s.domain())
	w.kstr("OriginatingServer", fmt.Sprintf("DB%dPR0%dMB%04d (15.20.%d.%03d)", 3+r.intn(6), 1+r.intn(9), r.intn(10000), 7000+r.intn(900), r.intn(1000)))
	w.kbool("ExternalAccess", r.pct(3))
	if m.recordType == 1 {
		w.kstr("ObjectId", s.domain()+"/Users/"+u.upn)
		w.nameValues("Parameters", "Identity", u.upn, "ForwardingSmtpAddress", "smtp:archive@"+s.domain(), "DeliverToMailboxAndForward", "True")
		return
	}
	if ip != "" {
		w.kstr("ClientIPAddress", ip)
	}
	w.kstr("ClientInfoString", "Client=OWA;Action=ViewAction;"+pick(r, userAgents))
	w.kint("LogonType", int64(pick(r, []int{0, 0, 1, 2})))
	w.kint("InternalLogonType", 0)
	w.kstr("LogonUserSid", u.sid)
	w.kstr("MailboxGuid", u.mailbox)
	w.kstr("MailboxOwnerSid", u.sid)
	w.kstr("MailboxOwnerUPN", u.upn)
	switch m.recordType {
	case 2:
		w.key("Item").obj().kstr("Id", "RgAAAAD"+strconv.FormatUint(r.next(), 36)).
			key("ParentFolder").obj().kstr("Id", "LgAAAAD"+strconv.FormatUint(r.next(), 36)).kstr("Path", pick(r, []string{"\\Inbox", "\\Sent Items", "\\Drafts"})).endObj().
			kstr("Subject", pick(r, subjects)).kint("SizeInBytes", int64(2000+r.intn(90000))).endObj()
	case 3:
		w.key("AffectedItems").arr()
		for range 1 + r.intn(4) {
			w.obj().kstr("Id", "RgAAAAD"+strconv.FormatUint(r.next(), 36)).kstr("Subject", pick(r, subjects)).
				key("ParentFolder").obj().kstr("Path", "\\Inbox").endObj().endObj()
		}
		w.endArr()
		w.key("Folder").obj().kstr("Path", "\\Deleted Items").endObj()
	case 50:
		w.kint("OperationCount", int64(1+r.intn(40)))
		w.nameValues("OperationProperties", "MailAccessType", pick(r, []string{"Bind", "Sync"}), "IsThrottled", "False")
		w.key("Folders").arr().obj().key("FolderItems").arr()
		for range 1 + r.intn(5) {
			w.obj().kstr("InternetMessageId", fmt.Sprintf("<%s@%s>", strconv.FormatUint(r.next(), 36), s.domain())).kint("SizeInBytes", int64(3000+r.intn(50000))).endObj()
		}
		w.endArr().kstr("Path", "\\Inbox").endObj().endArr()
	}
}

func (s *Server) writeSharePoint(w *jw, r *rng, m recordMeta, u *user) {
	file := pick(r, fileNames)
	var site, rel string
	if m.workload == "OneDrive" {
		site = "https://" + s.tenantShort() + "-my.sharepoint.com/personal/" + strings.NewReplacer("@", "_", ".", "_").Replace(u.upn) + "/"
		rel = "Documents/" + pick(r, []string{"Projects", "Notes", "Shared"})
	} else {
		site = "https://" + s.tenantShort() + ".sharepoint.com/sites/" + pick(r, []string{"Finance", "Engineering", "HR", "Sales", "Legal"}) + "/"
		rel = "Shared Documents/" + pick(r, []string{"Reports", "Contracts", "Plans", "2024"})
	}
	w.kstr("ObjectId", site+rel+"/"+file)
	w.kstr("CorrelationId", guidFrom(r.next(), r.next()))
	w.kstr("EventSource", "SharePoint")
	w.kstr("ItemType", map[bool]string{true: "Page", false: "File"}[m.recordType == 4])
	w.kstr("ListId", guidFrom(r.next(), 11))
	w.kstr("ListItemUniqueId", guidFrom(r.next(), 12))
	w.kstr("Site", guidFrom(r.next(), 13))
	w.kstr("UserAgent", pick(r, userAgents))
	w.kstr("WebId", guidFrom(r.next(), 14))
	w.kint("Scope", 0)
	w.kstr("SourceFileExtension", file[strings.LastIndexByte(file, '.')+1:])
	w.kstr("SiteUrl", site)
	w.kstr("SourceFileName", file)
	w.kstr("SourceRelativeUrl", rel)
	w.kbool("DoNotDistributeEvent", true)
	w.kbool("HighPriorityMediaProcessing", false)
	if m.recordType == 14 {
		w.kstr("TargetUserOrGroupName", "guest"+strconv.Itoa(r.intn(100))+"@fabrikam.example")
		w.kstr("TargetUserOrGroupType", pick(r, []string{"Guest", "Member", "SharePointGroup"}))
		w.kstr("EventData", "<Type>Edit</Type><MembersCanShare>Enabled</MembersCanShare>")
	}
}

func (s *Server) writeGeneral(w *jw, r *rng, m recordMeta, u *user) {
	switch m.workload {
	case "MicrosoftTeams":
		team := pick(r, []string{"Project Falcon", "Finance Team", "All Company", "Incident Response"})
		w.kstr("TeamName", team)
		w.kstr("TeamGuid", "19:"+strconv.FormatUint(r.next(), 36)+"@thread.tacv2")
		w.kstr("AADGroupId", guidFrom(r.next(), 25))
		w.kstr("ChannelName", pick(r, []string{"General", "Announcements", "Design"}))
		w.kstr("CommunicationType", "Team")
		w.key("Members").arr().obj().kstr("DisplayName", u.name).kint("Role", 1).kstr("UPN", u.upn).endObj().endArr()
		w.kstr("ItemName", team)
	case "PowerBI":
		w.kstr("Activity", m.operation)
		w.kstr("ItemName", pick(r, []string{"Quarterly Sales", "Pipeline", "Headcount"}))
		w.kstr("WorkSpaceName", pick(r, []string{"Finance", "Sales Ops"}))
		w.kstr("DatasetName", "Sales Model")
		w.kstr("ReportName", "Quarterly Sales")
		w.kstr("WorkspaceId", guidFrom(r.next(), 20))
		w.kstr("ReportId", guidFrom(r.next(), 21))
		w.kstr("RequestId", guidFrom(r.next(), 22))
		w.kbool("IsSuccess", true)
		w.kstr("ConsumptionMethod", "Power BI Web")
		w.kstr("DistributionMethod", "Workspace")
	case "Yammer":
		w.kint("ActorYammerUserId", int64(r.next()%1e12))
		w.kstr("ActorUserId", u.upn)
		w.kstr("GroupName", "All Company")
		w.kint("MessageId", int64(r.next()%1e15))
		w.kint("YammerNetworkId", 1234567)
	case "MicrosoftForms":
		w.kstr("FormId", strconv.FormatUint(r.next(), 36)+strconv.FormatUint(r.next(), 36))
		w.kstr("FormName", pick(r, []string{"Offsite survey", "Lunch order", "Security quiz"}))
		w.key("FormTypes").arr().str("Form").endArr()
		w.kstr("SourceApp", "Microsoft Forms")
	case "MicrosoftStream":
		w.kstr("ResourceTitle", pick(r, []string{"All hands recording", "Onboarding"}))
		w.kstr("ResourceUrl", "https://web.microsoftstream.com/video/"+guidFrom(r.next(), 32))
		w.kstr("EntityPath", "/video/"+guidFrom(r.next(), 33))
	case "MicrosoftFlow":
		w.kstr("FlowConnectorNames", "Office 365 Outlook, SharePoint")
		w.kstr("FlowDetailsUrl", "https://make.powerautomate.com/manage/environments/Default-"+s.cfg.TenantID+"/flows/"+guidFrom(r.next(), 30)+"/details")
		w.kstr("LicenseDisplayName", "Microsoft 365 E5")
		w.kint("SharingPermission", 0)
		w.kint("UserTypeInitiated", 1)
		w.kstr("UserUPN", u.upn)
	case "SecurityComplianceCenter":
		// Parameters is a plain string here, an array elsewhere: the
		// string-vs-array flip of mgmt-api §8.5.
		w.kstr("Parameters", fmt.Sprintf("-Name \"Search %d\" -ExchangeLocation \"All\" -ContentMatchQuery \"subject:'invoice'\"", r.intn(1000)))
		w.kstr("ObjectId", fmt.Sprintf("Search %d", r.intn(1000)))
		w.kstr("ClientApplication", "EMC")
		w.kstr("SessionId", guidFrom(r.next(), 18))
		w.kstr("StartTime", time.Unix(int64(1.7e9)+int64(r.intn(3e7)), int64(r.intn(1e9))).UTC().Format("2006-01-02T15:04:05.0000000Z"))
	case "ThreatIntelligence":
		w.key("AttachmentData").arr().obj().kstr("FileName", "invoice.pdf.html").kstr("FileType", "html").
			kstr("SHA256", fmt.Sprintf("%016x%016x%016x%016x", r.next(), r.next(), r.next(), r.next())).kint("FileVerdict", 1).endObj().endArr()
		w.kstr("DeliveryAction", pick(r, []string{"Blocked", "Delivered", "Junked"}))
		w.key("DetectionMethod").str(pick(r, []string{"File detonation", "URL malicious reputation", "Spoof DMARC"}))
		w.kstr("Directionality", "Inbound")
		w.kstr("InternetMessageId", fmt.Sprintf("<%s@mail.fabrikam.example>", strconv.FormatUint(r.next(), 36)))
		msg := m.creation.Add(-time.Minute)
		w.kstr("MessageTime", msg.Format("2006-01-02T15:04:05Z"))
		w.kstr("ReceivedTime", msg.Format("1/2/2006 3:04:05 PM"))
		w.kstr("NetworkMessageId", guidFrom(r.next(), 28))
		w.kstr("P1Sender", "billing@fabrikam.example")
		w.kstr("P2Sender", "billing@fabrikam.example")
		w.key("Recipients").arr().str(u.upn).endArr()
		w.kstr("SenderIp", "203.0.113."+strconv.Itoa(1+r.intn(254)))
		w.kstr("Subject", pick(r, subjects))
		w.kstr("Verdict", pick(r, []string{"Phish", "Malware", "Spam"}))
	case "CRM":
		w.kstr("CrmOrganizationUniqueName", "org"+strconv.FormatUint(r.next()%1e8, 16))
		w.kstr("EntityId", guidFrom(r.next(), 21))
		w.kstr("EntityName", pick(r, []string{"account", "contact", "opportunity"}))
		w.kstr("InstanceUrl", "https://"+s.tenantShort()+".crm.dynamics.com")
		w.kstr("Message", m.operation)
		w.kstr("ServiceName", "OrganizationService")
		w.kstr("SystemUserId", guidFrom(r.next(), 22))
		w.kstr("UserUpn", u.upn)
		w.kstr("UserAgent", pick(r, userAgents))
	case "Copilot":
		w.kstr("AppIdentity", "Copilot.MicrosoftCopilot.BizChat")
		w.key("CopilotEventData").obj().
			kstr("AppHost", pick(r, []string{"Teams", "Word", "Outlook", "BizChat"})).
			key("Contexts").arr().obj().kstr("Id", "https://"+s.tenantShort()+".sharepoint.com/sites/Finance").kstr("Type", "SharePointSite").endObj().endArr().
			kstr("ThreadId", "19:"+strconv.FormatUint(r.next(), 36)+"@thread.v2").
			key("AccessedResources").arr().obj().kstr("Id", guidFrom(r.next(), 261)).kstr("Name", pick(r, fileNames)).kstr("Type", "File").kstr("Action", "Read").endObj().endArr().
			key("Messages").arr().obj().kstr("Id", strconv.FormatUint(r.next()%1e13, 10)).kbool("isPrompt", true).endObj().
			obj().kstr("Id", strconv.FormatUint(r.next()%1e13, 10)).kbool("isPrompt", false).endObj().endArr().
			endObj()
	case "Dynamics 365":
		w.kstr("EnvironmentName", "Production")
		w.kstr("ApplicationId", guidFrom(r.next(), 278))
		w.kstr("ObjectId", "Business Central")
	}
}

// writeDLP writes the DLP.All body (mgmt-api §8.4): source workload,
// UserId/UserKey DlpAgent, PolicyDetails with detections. Without
// ActivityFeed.ReadDlp the detected values are left out.
func (s *Server) writeDLP(w *jw, r *rng, m recordMeta, u *user, details bool) {
	w.kstr("UserKey", "DlpAgent")
	w.kint("UserType", 4)
	w.kint("Version", 1)
	w.kstr("Workload", m.workload)
	w.kstr("UserId", "DlpAgent")
	w.kstr("IncidentId", guidFrom(r.next(), 13))
	w.kbool("SensitiveInfoDetectionIsIncluded", details)
	if m.recordType == 13 {
		msgID := fmt.Sprintf("<%s@%s>", strconv.FormatUint(r.next(), 36), s.domain())
		w.kstr("ObjectId", msgID)
		w.key("ExchangeMetaData").obj().
			key("BCC").arr().endArr().key("CC").arr().endArr().
			kint("FileSize", int64(5000+r.intn(200000))).kstr("From", u.upn).kstr("MessageID", msgID).
			kint("RecipientCount", 1).kstr("Sent", m.creation.Add(-time.Minute).Format("2006-01-02T15:04:05")).
			kstr("Subject", pick(r, subjects)).key("To").arr().str("partner@fabrikam.example").endArr().
			kstr("UniqueID", guidFrom(r.next(), 131)).endObj()
	} else {
		file := pick(r, fileNames)
		site := "https://" + s.tenantShort() + ".sharepoint.com/sites/Finance/"
		w.kstr("ObjectId", site+"Shared Documents/"+file)
		w.key("SharePointMetaData").obj().
			kstr("FileID", guidFrom(r.next(), 111)).kstr("FileName", file).kstr("FileOwner", u.name).
			kstr("FilePathUrl", site+"Shared Documents/"+file).kint("FileSize", int64(10000+r.intn(900000))).
			kstr("From", u.upn).kbool("IsViewableByExternalUsers", r.pct(10)).
			kstr("ItemCreationTime", m.creation.Add(-48*time.Hour).Format("2006-01-02T15:04:05")).
			key("SiteAdmin").arr().str(u.upn).endArr().
			kstr("SiteCollectionGuid", guidFrom(r.next(), 112)).kstr("SiteCollectionUrl", site).
			kstr("UniqueID", guidFrom(r.next(), 113)).endObj()
	}
	w.key("PolicyDetails").arr().obj().
		kstr("PolicyId", guidFrom(uint64(s.cfg.Seed), 1301)).kstr("PolicyName", "U.S. Financial Data").
		key("Rules").arr().obj().
		key("Actions").arr().str("NotifyUser").endArr().
		key("ConditionsMatched").obj().kbool("ConditionMatchedInNewScheme", true).key("SensitiveInformation").arr()
	for k := range 1 + r.intn(2) {
		st := sensitiveTypes[(r.intn(len(sensitiveTypes))+k)%len(sensitiveTypes)]
		n := 1 + r.intn(12)
		if r.intn(60) == 0 {
			n = 150 + r.intn(100) // a spreadsheet full of numbers: a 10 KB+ record
		}
		w.obj().kint("Confidence", int64(pick(r, []int{75, 85, 85, 95}))).kint("Count", int64(n))
		if details {
			w.key("SensitiveInformationDetections").obj().key("DetectedValues").arr()
			for range n {
				w.obj().kstr("Name", st.name).kstr("Value", pick(r, st.samples)).endObj()
			}
			w.endArr().kbool("ResultsTruncated", false).endObj()
		}
		w.kstr("SensitiveType", st.id).kint("UniqueCount", int64(max(1, n/2))).endObj()
	}
	w.endArr().endObj().
		kstr("ManagementRuleId", guidFrom(uint64(s.cfg.Seed), 1302)).kstr("RuleId", guidFrom(uint64(s.cfg.Seed), 1303)).
		kstr("RuleMode", "Enable").kstr("RuleName", "Low volume of content detected U.S. Financial Data").
		kstr("Severity", pick(r, []string{"Low", "Medium", "High"})).
		endObj().endArr().endObj().endArr()
}

// sensitiveType is a built-in sensitive information type with test values
// that are valid-looking but not real (test card numbers, invalid SSNs).
type sensitiveType struct {
	id, name string
	samples  []string
}

var sensitiveTypes = []sensitiveType{
	{"50842eb7-edc8-4019-85dd-5a5c1f2bb085", "Credit Card Number", []string{"4111 1111 1111 1111", "5555555555554444", "378282246310005"}},
	{"a44669fe-0d48-453d-a9b1-2cc83f2cba77", "U.S. Social Security Number (SSN)", []string{"078-05-1120", "219-09-9999"}},
	{"e7dc4711-11b7-4cb0-b88b-2c394a771f0e", "International Banking Account Number (IBAN)", []string{"DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"}},
	{"a2ce32a8-f935-4bb6-8e96-2a5157672e2c", "U.S. Bank Account Number", []string{"000123456789", "987654321"}},
}

// user is one synthetic member of the tenant.
type user struct {
	name, upn, key, oid, sid, mailbox string
}

var (
	firstNames = []string{"Adele", "Alex", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni", "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep"}
	lastNames  = []string{"Vance", "Wilber", "Siciliani", "Archie", "Mueller", "Langer", "Lorenz", "Sherman", "Gu", "Holloway", "Robbins", "Bowen", "Graham", "Wilke", "Fernandez", "Gupta"}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
		"Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17531; Pro)",
		"OneDriveMpc-Transform_Thumbnail/1.0",
		"Microsoft SkyDriveSync 24.076.0414.0003 ship; Windows NT 10.0 (19045)",
	}
	subjects   = []string{"Q3 forecast", "Invoice 4471 overdue", "Re: offsite planning", "Password expiry notice", "Contract draft v2", "Weekly status"}
	fileNames  = []string{"Budget 2024.xlsx", "Board deck.pptx", "Contract.docx", "notes.txt", "Roadmap.pdf", "payroll_export.csv", "logo.png"}
	proseWords = []string{"the", "policy", "conditional", "access", "tenant", "grant", "control", "session", "device", "compliant", "location", "trusted", "named", "application", "require", "multifactor", "authentication", "sign-in", "risk", "block", "legacy"}
)

// makeUsers builds the tenant's users once; records pick from them.
func (s *Server) makeUsers() {
	s.users = make([]user, len(firstNames)*len(lastNames))
	for i := range s.users {
		s.users[i] = s.user(i)
	}
}

func (s *Server) user(i int) user {
	f, l := firstNames[i%len(firstNames)], lastNames[i/len(firstNames)%len(lastNames)]
	h := mix(uint64(s.cfg.Seed), 0x05e4, uint64(i))
	return user{
		name:    f + " " + l,
		upn:     strings.ToLower(f+"."+l) + "@" + s.domain(),
		key:     fmt.Sprintf("10032000%08X", uint32(h)),
		oid:     guidFrom(h, 1),
		sid:     fmt.Sprintf("S-1-5-21-%d-%d-%d-%d", 1e9+h%1e9, 1e9+(h>>20)%1e9, 1e9+(h>>30)%1e9, 1000+i),
		mailbox: guidFrom(h, 2),
	}
}

func (s *Server) tenantShort() string {
	return "contoso" + strconv.FormatUint(uint64(s.cfg.Seed)%1000, 10)
}
func (s *Server) domain() string { return s.tenantShort() + ".onmicrosoft.com" }

// prose returns about n bytes of words, for the occasional huge field.
func prose(r *rng, n int) string {
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		b.WriteString(pick(r, proseWords))
		b.WriteByte(' ')
	}
	return b.String()
}
